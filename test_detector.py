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

from cctv.atomic import check_writable_dir  # noqa: E402
from cctv.classifier import load_classifier  # noqa: E402
from cctv.cli import make_parser  # noqa: E402
from cctv.errors import UserError, check_threads, cli_main  # noqa: E402
from cctv.face_dataset import DEFAULT_CACHE_DIR, face_crops_from_folder  # noqa: E402
from cctv.mask_metrics import evaluate_classifier, report_block  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(detector_model_path="models/detector.pt", test_examples_path="mask_dataset/test", mtcnn_model_path=None,
        cache_dir=str(DEFAULT_CACHE_DIR), threads=2, progress=True):
    """Print the report block; returns the metrics dict."""
    import torch

    if check_threads(threads):
        torch.set_num_threads(threads)
    check_writable_dir(cache_dir, "--cache_dir")  # before any work
    clf = load_classifier(detector_model_path)
    faces = face_crops_from_folder(test_examples_path, mtcnn_settings=clf.mtcnn_settings,
                                   mtcnn_model_path=mtcnn_model_path, cache_dir=cache_dir, progress=progress)
    if not len(faces):
        raise UserError(f"{test_examples_path}: no images to test in its class folders"
                        + (f" ({len(faces.unreadable)} unreadable files)" if faces.unreadable else ""))
    metrics = evaluate_classifier(clf, faces)
    print(report_block(metrics, len(faces.no_face)))
    if faces.unreadable:
        print(f"unreadable files skipped: {len(faces.unreadable)}")
    return metrics


def parse_opt(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--detector_model_path", default="models/detector.pt", help="classifier checkpoint")
    p.add_argument("--test_examples_path", default="mask_dataset/test",
                   help="folder with protected/ and unprotected/ (or with_mask/, without_mask/)")
    p.add_argument("--mtcnn_model_path", default=None,
                   help="fine-tuned MTCNN checkpoint for the crops (default: pretrained weights)")
    p.add_argument("--cache_dir", default=str(DEFAULT_CACHE_DIR), help="where MTCNN face crops are cached")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads(opt.threads)
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
