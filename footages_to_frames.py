"""Cut CCTV footage into JPEG frames for labeling in Superb AI Suite, optionally with pre-labels.

    python footages_to_frames.py --footage_dir footages --output_dir frames --frames_per_extract 10 \
        [--pre_labels --detector_model_path models/detector.pt --project_json project.json]
    cd frames && spb upload dataset -p <project> -n <dataset> [--include-label]

Every --frames_per_extract-th frame of every video (mp4, avi, mov, mkv, gif, ...) in --footage_dir becomes
`<footage>-frame<N>.jpg` (N: the frame's index in its footage). Files that are not video are skipped with a
note; frames already in --output_dir are kept, so a re-run adds nothing twice. --pre_labels writes
`<frame>.jpg.json` beside each frame with our detections (protected/unprotected boxes) in the form
`spb upload dataset --include-label` uploads.
"""
import sys
from pathlib import Path

from cctv.atomic import check_writable_dir
from cctv.cli import make_parser
from cctv.errors import check_range, cli_main
from cctv.labels import load_label_interface
from cctv.labels.footage import extract_frames, summary_table
from cctv.threads import set_threads

ROOT = Path(__file__).resolve().parent


def run(footage_dir, output_dir, frames_per_extract=10, pre_labels=False,
        detector_model_path=ROOT / "models" / "detector.pt", mtcnn_model_path=None, project_json=None,
        threshold=0.5, jpeg_quality=95):
    check_range("--jpeg_quality", jpeg_quality, 0, 100)
    check_range("--threshold", threshold, 0, 1)
    check_writable_dir(output_dir, "--output_dir")  # before any work
    label_interface = load_label_interface(project_json) if project_json else None
    prelabeler = None
    if pre_labels:
        from cctv.labels.prelabel import PreLabeler

        prelabeler = PreLabeler(detector_model_path, mtcnn_model_path, threshold)
        if label_interface is None:
            print("note: no --project_json: pre-labels carry fixed class ids; give the project.json that "
                  "`spb download` writes so they carry your project's", file=sys.stderr)
    results = extract_frames(footage_dir, output_dir, frames_per_extract, prelabeler, label_interface, jpeg_quality)
    for r in results:
        if r.note:
            print(f"note: skipped {Path(footage_dir) / r.name}: {r.note}", file=sys.stderr)
    print(summary_table(results, prelabels=pre_labels))
    return results


def parse_opt(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--footage_dir", required=True, help="folder of footage files (video or GIF)")
    p.add_argument("--output_dir", required=True, help="folder for the JPEG frames (the `spb upload` folder)")
    p.add_argument("--frames_per_extract", type=int, default=10, help="keep every N-th frame")
    p.add_argument("--pre_labels", action="store_true",
                   help="write <frame>.jpg.json Suite pre-labels with our detections beside each frame")
    p.add_argument("--detector_model_path", default=str(ROOT / "models" / "detector.pt"),
                   help="mask classifier checkpoint (train_mask_detector.py), for --pre_labels")
    p.add_argument("--mtcnn_model_path", default=None, help="fine-tuned MTCNN checkpoint (finetune_mtcnn.py)")
    p.add_argument("--project_json", default=None,
                   help="the Suite project's project.json (written by `spb download`): its class ids go into the pre-labels")
    p.add_argument("--threshold", type=float, default=0.5, help="P(protected) at or above which a face is protected")
    p.add_argument("--jpeg_quality", type=int, default=95, help="JPEG quality of the frames (1-100)")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads()
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
