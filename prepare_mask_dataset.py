"""Build mask_dataset/{train,test}/{protected,unprotected} from a Kaggle-style face folder (with_mask/,
without_mask/; any file names) and/or labeled photos (each labeled face cropped to its own file).

    python prepare_mask_dataset.py --source_path ../shared/data/mask_classification \
        --output_path mask_dataset/mask_classification --train_per_class 500
    python prepare_mask_dataset.py --labels_dir ../shared/data/facemask853/annotations \
        --images_dir ../shared/data/facemask853/images --output_path mask_dataset/facemask853
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.cli import make_parser, settings_defaults  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.labels import add_class_map_argument  # noqa: E402
from cctv.mask_dataset_prep import PrepConfig, run_prepare  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(**kwargs):
    """Prepare the dataset with the script's options (PrepConfig's fields) as keyword arguments; returns the
    PrepReport."""
    report = run_prepare(**kwargs)
    print(report.table())
    return report


def parse_opt(argv=None):
    d = settings_defaults(PrepConfig)
    p = make_parser(__doc__)
    p.add_argument("--source_path", default=d.source_path,
                   help="Kaggle-style folder with with_mask/ and without_mask/ (or protected/, unprotected/)")
    p.add_argument("--labels_dir", default=d.labels_dir,
                   help="labeled photos: a Suite export (or its labels/), COCO .json, VOC or YOLO folder")
    p.add_argument("--metadata_dir", default=d.metadata_dir, help="the Suite export's meta/<dataset> folder, if needed")
    p.add_argument("--images_dir", default=d.images_dir, help="folder with the labeled photos")
    add_class_map_argument(p)
    p.add_argument("--output_path", default=d.output_path, help="where train/ and test/ go")
    p.add_argument("--train_per_class", type=int, default=d.train_per_class,
                   help="images per class to train/ from --source_path; the rest go to test/")
    p.add_argument("--test_fraction", type=float, default=d.test_fraction,
                   help="share of labeled photos (split by photo) whose faces go to test/")
    p.add_argument("--min_face_size", type=float, default=d.min_face_size,
                   help="labeled faces smaller than this (px, short side) are left out")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of both splits")
    p.add_argument("--overwrite", action="store_true", default=d.overwrite,
                   help="replace images already in the output folders")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads()
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
