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

from cctv.cli import make_parser  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.labels import add_class_map_argument  # noqa: E402
from cctv.mask_dataset_prep import run_prepare  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(**kwargs):
    """Prepare the dataset with the script's options as keyword arguments; returns the PrepReport."""
    report = run_prepare(**kwargs)
    print(report.table())
    return report


def parse_opt(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--source_path", default=None,
                   help="Kaggle-style folder with with_mask/ and without_mask/ (or protected/, unprotected/)")
    p.add_argument("--labels_dir", default=None,
                   help="labeled photos: a Suite export (or its labels/), COCO .json, VOC or YOLO folder")
    p.add_argument("--metadata_dir", default=None, help="the Suite export's meta/<dataset> folder, if needed")
    p.add_argument("--images_dir", default=None, help="folder with the labeled photos")
    add_class_map_argument(p)
    p.add_argument("--output_path", default="mask_dataset", help="where train/ and test/ go")
    p.add_argument("--train_per_class", type=int, default=500,
                   help="images per class to train/ from --source_path; the rest go to test/")
    p.add_argument("--test_fraction", type=float, default=0.2,
                   help="share of labeled photos (split by photo) whose faces go to test/")
    p.add_argument("--min_face_size", type=float, default=20,
                   help="labeled faces smaller than this (px, short side) are left out")
    p.add_argument("--seed", type=int, default=0, help="seed of both splits")
    p.add_argument("--overwrite", action="store_true", help="replace images already in the output folders")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads()
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
