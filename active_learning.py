"""The active-learning loop, run by cron every few minutes: low-confidence frames collected by
`cctv_mask_detector.py --uncertain_frames_dir` become numbered labeling batches (uploaded to the Suite with
pre-labels when --spb_project is set); when a batch's labels arrive, MTCNN and the classifier are fine-tuned
from the current models on every labeled batch, evaluated against them, and promoted only if neither
detection AP nor classifier accuracy gets worse.

    */5 * * * * cd /path/to/repo && .venv/bin/python active_learning.py run >> runs/active_learning/cron.log 2>&1
    python active_learning.py status
"""
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.active_learning import LoopConfig, run_loop, status_report  # noqa: E402
from cctv.active_learning.training import TrainSettings  # noqa: E402
from cctv.atomic import write_json  # noqa: E402
from cctv.cli import add_threads, make_parser, settings_defaults  # noqa: E402
from cctv.errors import UserError, cli_main  # noqa: E402
from cctv.threads import lower_priority, set_threads  # noqa: E402

TRAIN_FIELDS = set(TrainSettings.__dataclass_fields__)


def build_config(**kwargs) -> LoopConfig:
    """LoopConfig from flat keywords (the flags' names); one that neither it nor TrainSettings has is a TypeError
    naming it."""
    train = {k: kwargs.pop(k) for k in list(kwargs) if k in TRAIN_FIELDS}
    if "classifier_examples_path" in train:
        train["classifier_examples_path"] = tuple(train["classifier_examples_path"] or ())
    if isinstance(kwargs.get("spb_ready_statuses"), str):
        kwargs["spb_ready_statuses"] = tuple(s.strip() for s in kwargs["spb_ready_statuses"].split(",") if s.strip())
    return LoopConfig(**kwargs, train=TrainSettings(**train))


def run(command="run", **kwargs):
    """`run(command="run"|"status", workdir=..., ...)`: the loop's tick (returns what it did) or the status text.
    A status that found broken files prints everything it could read, then the first problem as the error."""
    cfg = build_config(**kwargs)
    set_threads(cfg.threads)
    if command == "status":
        text, problems = status_report(cfg)
        print(text)
        if problems:
            raise UserError(problems[0] + (f" (and {len(problems) - 1} more problem(s) above)" if len(problems) > 1
                                           else ""))
        return text
    if command == "run":
        return run_loop(cfg)
    raise UserError(f"unknown command '{command}': use run or status")


def build_parser():
    p = make_parser(__doc__)
    p.add_argument("command", choices=("run", "status"), help="run: do whatever is due; status: show the state")
    d, t = settings_defaults(LoopConfig), settings_defaults(TrainSettings)
    p.add_argument("--workdir", default=d.workdir, help="batches, history.jsonl and the lock live here")
    p.add_argument("--uncertain_frames_dir", default=d.uncertain_frames_dir,
                   help="where cctv_mask_detector.py saves low-confidence frames (default <workdir>/uncertain)")
    p.add_argument("--models_dir", default=d.models_dir, help="model versions and current.json live here")
    p.add_argument("--batch_frames", type=int, default=d.batch_frames, help="frames per labeling batch")
    p.add_argument("--labels_settle_s", type=float, default=d.labels_settle_s,
                   help="a dropped labels/ folder is used once unchanged for this long")
    p.add_argument("--reference_labels_dir", default=d.reference_labels_dir,
                   help="labeled frames added to every evaluation (any format cctv.labels reads)")
    p.add_argument("--tolerance", type=float, default=d.tolerance,
                   help="promote when AP and accuracy drop by at most this (0: must not get worse)")
    p.add_argument("--spb_project", default=d.spb_project,
                   help="Suite project: upload batches (dataset batch-<N>) and download labels with spb")
    p.add_argument("--spb_ready_statuses", default=",".join(d.spb_ready_statuses),
                   help="Suite label statuses that count as labeled (comma-separated)")
    add_threads(p, d.threads, "torch CPU threads")
    p.add_argument("--nice", type=int, default=int(os.environ.get("CCTV_AL_NICE", 10)),
                   help="run: this much nicer than the main job, which keeps its frame rate (0: don't; "
                        "default from CCTV_AL_NICE, which the test run sets to 0)")
    p.add_argument("--retention_days", type=float, default=d.retention_days,
                   help="remove labeling batches and waiting frames older than this (days), logged in history.jsonl")
    p.add_argument("--outputs_dir", default=d.outputs_dir,
                   help="with --retention_days: also remove old runs (recordings, snapshots, clips, ...) here")
    g = p.add_argument_group("fine-tuning (small settings keep a cron tick short)")
    g.add_argument("--mtcnn_epochs", type=int, default=t.mtcnn_epochs,
                   help="MTCNN fine-tuning: passes over each stage's training windows")
    g.add_argument("--mtcnn_stages", default=t.mtcnn_stages, help="MTCNN stages to fine-tune: any of pnet,rnet,onet")
    g.add_argument("--mtcnn_batch_size", type=int, default=t.mtcnn_batch_size,
                   help="MTCNN fine-tuning: labeled frames per step")
    g.add_argument("--mtcnn_lr", type=float, default=t.mtcnn_lr, help="MTCNN fine-tuning: Adam learning rate")
    g.add_argument("--classifier_epochs", type=int, default=t.classifier_epochs,
                   help="classifier fine-tuning: passes over the labeled faces")
    g.add_argument("--classifier_batch_per_class", type=int, default=t.classifier_batch_per_class,
                   help="classifier fine-tuning: faces of each class per batch")
    g.add_argument("--classifier_lr", type=float, default=t.classifier_lr,
                   help="classifier fine-tuning: peak learning rate")
    g.add_argument("--classifier_examples_path", nargs="*", default=list(t.classifier_examples_path),
                   help="class folders (protected/ unprotected/) mixed into classifier fine-tuning")
    g.add_argument("--classifier_examples_per_class", type=int, default=t.classifier_examples_per_class,
                   help="images per class taken from --classifier_examples_path")
    g.add_argument("--holdout_fraction", type=float, default=t.holdout_fraction,
                   help="share of each batch's frames held back for evaluation (fixed per frame)")
    g.add_argument("--max_train_frames", type=int, default=t.max_train_frames, help="cap (0: all)")
    g.add_argument("--seed", type=int, default=t.seed, help="seed of the held-out split and of training")
    g.add_argument("--no_progress", dest="progress", action="store_false", default=t.progress, help="no progress bars")
    return p


SETTINGS_FILE = "settings.json"  # in the work folder: the loop's settings, so cron and `status` agree
NOT_SAVED = {"command", "workdir", "progress"}


def parse_opt(argv=None):
    """The flags, over the settings saved in the work folder by earlier runs, over the built-in defaults."""
    p = build_parser()
    opt = p.parse_args(argv)
    try:
        saved = load_settings(opt.workdir)
    except UserError as e:
        p.error(str(e))
    if saved:
        known = {a.dest for a in p._actions} - NOT_SAVED
        p.set_defaults(**{k: v for k, v in saved.items() if k in known})
        opt = p.parse_args(argv)
    return opt


def load_settings(workdir) -> dict:
    path = Path(workdir) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON (fix it, or delete it to go back to the defaults)") from None
    if not isinstance(saved, dict):
        raise UserError(f"{path}: expected a JSON object of settings")
    return saved


def save_settings(opt):
    """`run` keeps its settings (flags given now included) for the runs and `status` calls that follow."""
    settings = {k: v for k, v in sorted(vars(opt).items()) if k not in NOT_SAVED}
    path = Path(opt.workdir) / SETTINGS_FILE
    if load_settings(opt.workdir) != settings:
        write_json(path, settings)
        print(f"settings saved in {path} (later runs and `status` use them; a flag given again replaces one)")


@cli_main
def main(opt):
    if opt.command == "run":
        lower_priority(opt.nice)
    run(**{k: v for k, v in vars(opt).items() if k != "nice"})  # --nice is this process's, not the loop's
    if opt.command == "run":
        save_settings(opt)


if __name__ == "__main__":
    main(parse_opt())
