"""Train the mask classifier (protected vs unprotected face crops). MTCNN runs once per image and its crops
are cached; training uses class-balanced batches, augmentation, a validation split, and keeps the best epoch.

    python train_mask_detector.py --train_examples_path mask_dataset/mask_classification/train \
        mask_dataset/facemask853/train --num_epochs 50 --detector_model_output_path models/detector.pt
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.classifier import ARCHITECTURES  # noqa: E402
from cctv.cli import add_threads, make_parser, settings_defaults  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.labels import add_class_map_argument  # noqa: E402
from cctv.mask_training import TrainConfig, run_training  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(**kwargs):
    """Train with the script's options (TrainConfig's fields) as keyword arguments; returns the trained
    MaskClassifier."""
    settings = TrainConfig(**kwargs)  # a mistyped keyword fails here, before anything runs
    set_threads(settings.threads)
    return run_training(**kwargs)


def parse_opt(argv=None):
    d = settings_defaults(TrainConfig)
    p = make_parser(__doc__)
    p.add_argument("--train_examples_path", nargs="+", default=list(d.train_examples_path),
                   help="one or more folders with protected/ and unprotected/ (or with_mask/, without_mask/)")
    p.add_argument("--train_dataset_size_per_class", type=int, default=d.train_dataset_size_per_class,
                   help="images per class taken from each folder (seeded pick; default: all)")
    p.add_argument("--batch_size_per_class", type=int, default=d.batch_size_per_class,
                   help="faces of each class in a batch")
    p.add_argument("--num_epochs", type=int, default=d.num_epochs, help="passes over the (larger class of the) data")
    p.add_argument("--detector_model_output_path", default=d.detector_model_output_path,
                   help="where to write the classifier checkpoint (atomically)")
    p.add_argument("--mtcnn_model_path", default=d.mtcnn_model_path,
                   help="fine-tuned MTCNN checkpoint for the crops (default: pretrained weights)")
    p.add_argument("--pretrained_detector_model_path", default=d.pretrained_detector_model_path,
                   help="start from this classifier checkpoint (its architecture and crop settings)")
    p.add_argument("--labels_dir", default=d.labels_dir,
                   help="add labeled live faces: crops of the labeled boxes of this export/labels folder")
    p.add_argument("--metadata_dir", default=d.metadata_dir, help="the Suite export's meta/<dataset> folder, if needed")
    p.add_argument("--images_dir", default=d.images_dir, help="folder with the labeled images, if not in the export")
    add_class_map_argument(p)
    p.add_argument("--test_examples_path", nargs="*", default=list(d.test_examples_path),
                   help="test folders to score the trained model on; metrics are stored in the checkpoint")
    p.add_argument("--arch", default=d.arch, choices=sorted(ARCHITECTURES),
                   help="'writeup' is the original two-conv network; 'small' a stronger 4-conv one")
    p.add_argument("--val_fraction", type=float, default=d.val_fraction,
                   help="share of each class held out to choose the best epoch")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of sampling, splits, augmentation, init")
    p.add_argument("--no_augment", dest="augment", action="store_false", default=d.augment,
                   help="train without augmentation")
    p.add_argument("--cache_dir", default=d.cache_dir, help="where MTCNN face crops are cached")
    add_threads(p, d.threads, "torch CPU threads")
    return p.parse_args(argv)


@cli_main
def main(opt):
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
