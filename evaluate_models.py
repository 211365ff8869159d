"""Compare face detectors on your own labeled frames: the pretrained MTCNN, the shipped CCTV model and a
given one, side by side: AP@0.5, recall of masked and unmasked faces, false boxes per frame, by face size.

    python evaluate_models.py --labels_dir my_export/labels --metadata_dir my_export/meta/my-dataset \\
        --images_dir frames --mtcnn_model_path runs/active_learning/candidate_mtcnn.pt
"""
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.cli import add_device, add_thresholds, add_threads, make_parser, settings_defaults  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.labels import add_labeled_frames_arguments  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


@dataclass
class CompareConfig:
    """The script's settings (its flags' names): the one place their defaults are written."""
    labels_dir: str
    metadata_dir: str | None = None
    images_dir: str | None = None
    mtcnn_model_path: str | None = None
    shipped_mtcnn_model_path: str | None = None  # None: models/cctv_mtcnn.pt
    min_face_size: float | None = None  # None: each model at its recorded setting
    thresholds: list | None = None  # None: each model at its recorded setting
    min_size: float = 0.0
    class_map: str | None = None
    threads: int = 2
    device: str = "cpu"
    progress: bool = True


def run(*args, **kwargs):
    """run(labels_dir, ...) with CompareConfig's fields; prints and returns the comparison
    ({model: {band: DetectionMetrics}})."""
    from cctv.cli import check_device, parse_thresholds
    from cctv.finetune.run import load_labeled_frames
    from cctv.model_eval import compare, default_specs, format_comparison

    c = CompareConfig(*args, **kwargs)
    set_threads(c.threads, c.device)
    thresholds = parse_thresholds(c.thresholds)
    device = check_device(c.device)
    items = load_labeled_frames(c.labels_dir, c.metadata_dir, c.images_dir, c.class_map)
    specs = default_specs(c.mtcnn_model_path, c.shipped_mtcnn_model_path, c.min_face_size, thresholds)
    results = compare(specs, items, c.min_size, device, c.progress)
    print(format_comparison(results, specs))
    return results


def parse_opt(argv=None):
    d = settings_defaults(CompareConfig)
    p = make_parser(__doc__)
    add_labeled_frames_arguments(p)
    p.add_argument("--mtcnn_model_path", default=d.mtcnn_model_path,
                   help="an MTCNN checkpoint to compare (e.g. fine-tuned)")
    p.add_argument("--shipped_mtcnn_model_path", default=d.shipped_mtcnn_model_path,
                   help="the shipped model (default models/cctv_mtcnn.pt)")
    p.add_argument("--min_face_size", type=float, default=d.min_face_size,
                   help="run every model at this min_face_size (default: each at its recorded setting)")
    add_thresholds(p, d.thresholds, "run every model at these thresholds (default: each at its recorded setting)")
    p.add_argument("--min_size", type=float, default=d.min_size, help="ignore labeled faces smaller than this (px)")
    add_threads(p, d.threads)
    add_device(p, d.device, "cpu or cuda")
    return p.parse_args(argv)


@cli_main
def main(opt):
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
