"""Score a mask classifier checkpoint on a test folder (protected/ + unprotected/, or with_mask/ +
without_mask/): the original write-up's counts and accuracy, then precision, recall, F1, ROC AUC and the
number of images in which MTCNN found no face. Positive = protected.

    python test_detector.py --detector_model_path models/detector.pt \
        --test_examples_path mask_dataset/mask_classification/test
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dataclasses import dataclass  # noqa: E402

from cctv.atomic import check_writable_dir  # noqa: E402
from cctv.classifier import load_classifier  # noqa: E402
from cctv.cli import add_threads, make_parser, settings_defaults  # noqa: E402
from cctv.errors import UserError, cli_main  # noqa: E402
from cctv.face_dataset import DEFAULT_CACHE_DIR, face_crops_from_folder  # noqa: E402
from cctv.mask_metrics import evaluate_classifier, report_block  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


@dataclass
class ScoreConfig:
    """The script's settings (its flags' names): the one place their defaults are written."""
    detector_model_path: str = "models/detector.pt"
    test_examples_path: str = "mask_dataset/test"
    mtcnn_model_path: str | None = None  # None: the pretrained MTCNN
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    threads: int = 2
    progress: bool = True


def run(**kwargs):
    """Print the report block (ScoreConfig's fields as keywords); returns the metrics dict."""
    c = ScoreConfig(**kwargs)
    set_threads(c.threads)
    check_writable_dir(c.cache_dir, "--cache_dir")  # before any work
    clf = load_classifier(c.detector_model_path)
    faces = face_crops_from_folder(c.test_examples_path, mtcnn_settings=clf.mtcnn_settings,
                                   mtcnn_model_path=c.mtcnn_model_path, cache_dir=c.cache_dir, progress=c.progress)
    if not len(faces):
        raise UserError(f"{c.test_examples_path}: no images to test in its class folders"
                        + (f" ({len(faces.unreadable)} unreadable files)" if faces.unreadable else ""))
    metrics = evaluate_classifier(clf, faces)
    print(report_block(metrics, len(faces.no_face)))
    if faces.unreadable:
        print(f"unreadable files skipped: {len(faces.unreadable)}")
    return metrics


def parse_opt(argv=None):
    d = settings_defaults(ScoreConfig)
    p = make_parser(__doc__)
    p.add_argument("--detector_model_path", default=d.detector_model_path, help="classifier checkpoint")
    p.add_argument("--test_examples_path", default=d.test_examples_path,
                   help="folder with protected/ and unprotected/ (or with_mask/, without_mask/)")
    p.add_argument("--mtcnn_model_path", default=d.mtcnn_model_path,
                   help="fine-tuned MTCNN checkpoint for the crops (default: pretrained weights)")
    p.add_argument("--cache_dir", default=d.cache_dir, help="where MTCNN face crops are cached")
    add_threads(p, d.threads)
    p.add_argument("--no_progress", dest="progress", action="store_false", default=d.progress, help="no progress bar")
    return p.parse_args(argv)


@cli_main
def main(opt):
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
