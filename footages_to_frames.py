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
from dataclasses import dataclass
from pathlib import Path

from cctv.atomic import check_writable_dir
from cctv.cli import CLASS_THRESHOLD_FLAG, add_class_threshold, make_parser, settings_defaults
from cctv.errors import check_range, cli_main
from cctv.labels import load_label_interface
from cctv.labels.footage import extract_frames, summary_table
from cctv.threads import set_threads

ROOT = Path(__file__).resolve().parent


@dataclass
class FramesConfig:
    """The script's settings (its flags' names): the one place their defaults are written."""
    footage_dir: str
    output_dir: str
    frames_per_extract: int = 10
    pre_labels: bool = False
    detector_model_path: str = str(ROOT / "models" / "detector.pt")
    mtcnn_model_path: str | None = None  # None: the pretrained MTCNN
    project_json: str | None = None
    class_threshold: float = 0.5
    jpeg_quality: int = 95


def run(*args, **kwargs):
    """run(footage_dir, output_dir, ...) with FramesConfig's fields; returns the per-footage results."""
    c = FramesConfig(*args, **kwargs)
    check_range("--jpeg_quality", c.jpeg_quality, 0, 100)
    check_range(CLASS_THRESHOLD_FLAG, c.class_threshold, 0, 1)
    check_writable_dir(c.output_dir, "--output_dir")  # before any work
    label_interface = load_label_interface(c.project_json) if c.project_json else None
    prelabeler = None
    if c.pre_labels:
        from cctv.labels.prelabel import PreLabeler

        prelabeler = PreLabeler(c.detector_model_path, c.mtcnn_model_path, c.class_threshold)
        if label_interface is None:
            print("note: no --project_json: pre-labels carry fixed class ids; give the project.json that "
                  "`spb download` writes so they carry your project's", file=sys.stderr)
    results = extract_frames(c.footage_dir, c.output_dir, c.frames_per_extract, prelabeler, label_interface,
                             c.jpeg_quality)
    for r in results:
        if r.note:
            print(f"note: skipped {Path(c.footage_dir) / r.name}: {r.note}", file=sys.stderr)
    print(summary_table(results, prelabels=c.pre_labels))
    return results


def parse_opt(argv=None):
    d = settings_defaults(FramesConfig)
    p = make_parser(__doc__)
    p.add_argument("--footage_dir", required=True, help="folder of footage files (video or GIF)")
    p.add_argument("--output_dir", required=True, help="folder for the JPEG frames (the `spb upload` folder)")
    p.add_argument("--frames_per_extract", type=int, default=d.frames_per_extract, help="keep every N-th frame")
    p.add_argument("--pre_labels", action="store_true", default=d.pre_labels,
                   help="write <frame>.jpg.json Suite pre-labels with our detections beside each frame")
    p.add_argument("--detector_model_path", default=d.detector_model_path,
                   help="mask classifier checkpoint (train_mask_detector.py), for --pre_labels")
    p.add_argument("--mtcnn_model_path", default=d.mtcnn_model_path,
                   help="fine-tuned MTCNN checkpoint (finetune_mtcnn.py)")
    p.add_argument("--project_json", default=d.project_json,
                   help="the Suite project's project.json (written by `spb download`): its class ids go into the "
                        "pre-labels")
    add_class_threshold(p, d.class_threshold)
    p.add_argument("--jpeg_quality", type=int, default=d.jpeg_quality, help="JPEG quality of the frames (1-100)")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads()
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
