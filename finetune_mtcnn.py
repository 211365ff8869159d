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

from cctv.cli import add_device, add_thresholds, make_parser, settings_defaults  # noqa: E402
from cctv.errors import cli_main  # noqa: E402
from cctv.finetune.run import FinetuneConfig, run_finetune  # noqa: E402
from cctv.labels import add_labeled_frames_arguments  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


def run(**kwargs):
    """Fine-tune with the script's options (FinetuneConfig's fields) as keyword arguments; returns the
    FinetuneResult."""
    return run_finetune(**kwargs)


def parse_opt(argv=None):
    d = settings_defaults(FinetuneConfig)
    p = make_parser(__doc__)
    add_labeled_frames_arguments(p)
    p.add_argument("--mtcnn_model_output_path", default=d.mtcnn_model_output_path,
                   help="where to write the fine-tuned checkpoint (only if better, unless --force)")
    p.add_argument("--pretrained_mtcnn_model", default=d.pretrained_mtcnn_model,
                   help="start from this fine-tuned checkpoint instead of the pretrained weights")
    p.add_argument("--batch_size", type=int, default=d.batch_size,
                   help="labeled frames per training step (all windows mined from them form the batch)")
    p.add_argument("--num_epochs", type=int, default=d.num_epochs, help="passes over each stage's training windows")
    p.add_argument("--stages", default=d.stages, help="stages to fine-tune: any of pnet,rnet,onet")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--val_fraction", type=float, default=d.val_fraction,
                   help="share of labeled frames held out to evaluate before and after")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the train/validation split and of sampling")
    add_thresholds(p, list(d.thresholds), "the cascade's thresholds, for mining and evaluation")
    p.add_argument("--min_face_size", type=float, default=d.min_face_size,
                   help="smallest face the cascade looks for; smaller labeled faces are not scored")
    add_device(p, d.device)
    p.add_argument("--force", action="store_true", default=d.force,
                   help="write the fine-tuned weights even if not better")
    return p.parse_args(argv)


@cli_main
def main(opt):
    set_threads(0, opt.device)
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
