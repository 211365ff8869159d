"""Fine-tune MTCNN (RNet and ONet by default, PNet on request) on faces labeled in the Suite (or any label
format cctv.labels reads), evaluate the cascade before and after on held-out frames, and write the new
weights only when they are better (or with --force).

    python finetune_mtcnn.py --metadata_dir=../shared/data/suite_exports/facemask853_2020_format/meta/cctv-mask-detector-live-data \
        --labels_dir=../shared/data/suite_exports/facemask853_2020_format/labels \
        --images_dir=../shared/data/facemask853/images --batch_size=8 --num_epochs=5 \
        --mtcnn_model_output_path=models/finetuned_mtcnn.pt
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.cli import make_parser  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.finetune.run import DEFAULT_THRESHOLDS, run_finetune  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(**kwargs):
    """Fine-tune with the script's options as keyword arguments; returns the FinetuneResult."""
    return run_finetune(**kwargs)


def parse_opt(argv=None):
    p = make_parser(__doc__)
    p.add_argument("--labels_dir", required=True,
                   help="labels: a Suite export's labels/ folder, an export folder or .zip, a COCO .json, "
                        "VOC or YOLO folder")
    p.add_argument("--metadata_dir", default=None,
                   help="the Suite export's meta/<dataset> folder (for layouts that need one)")
    p.add_argument("--images_dir", default=None, help="folder with the labeled images")
    p.add_argument("--mtcnn_model_output_path", default="models/finetuned_mtcnn.pt",
                   help="where to write the fine-tuned checkpoint (only if better, unless --force)")
    p.add_argument("--pretrained_mtcnn_model", default=None,
                   help="start from this fine-tuned checkpoint instead of the pretrained weights")
    p.add_argument("--batch_size", type=int, default=8,
                   help="labeled frames per training step (all windows mined from them form the batch)")
    p.add_argument("--num_epochs", type=int, default=5, help="passes over each stage's training windows")
    p.add_argument("--stages", default="rnet,onet", help="stages to fine-tune: any of pnet,rnet,onet")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--val_fraction", type=float, default=0.2,
                   help="share of labeled frames held out to evaluate before and after")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/validation split and of sampling")
    p.add_argument("--thresholds", default=",".join(map(str, DEFAULT_THRESHOLDS)),
                   help="the cascade's PNet,RNet,ONet thresholds, for mining and evaluation")
    p.add_argument("--min_face_size", type=float, default=20,
                   help="smallest face the cascade looks for; smaller labeled faces are not scored")
    p.add_argument("--class_map", default=None,
                   help="extra label class names, e.g. helmet=protected,bare=unprotected")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--force", action="store_true", help="write the fine-tuned weights even if not better")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads(0, opt.device)
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
