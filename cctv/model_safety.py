"""Writing a model never loses the one it replaces, and says how the two compare.

Every script that writes a model calls `keep_previous(path)` just before the (atomic) write: a model
already at `path` is copied beside it first, to `<stem>.shipped.pt` when it is one of the models shipped
with the repo (its SHA-256 is listed in `models/SHIPPED.json`; that copy is never overwritten by anything
else) and to `<stem>.prev.pt` otherwise (one step back). `replacement_report()` then prints the old and new
model's test figures side by side and says plainly when the new one is worse.

`describe_model(path)` is the one line the main job prints per model at start-up: which file, whether it is
a shipped one or which version, and the test figures recorded in it.

    python -m cctv.model_safety record models/cctv_classifier.pt   # list a new shipped model
    python -m cctv.model_safety check                              # every listed model still intact?
"""
import argparse
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_path, write_json

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_LIST = REPO_ROOT / "models" / "SHIPPED.json"
WORSE_MARGIN = 0.005  # a drop below this is noise (one face in a few hundred)


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped_models(listing=SHIPPED_LIST) -> dict:
    """{"models/detector.pt": {"sha256": ..., "about": ...}, ...}: the models that come with the repo."""
    try:
        return json.loads(Path(listing).read_text())["models"]
    except (OSError, ValueError, KeyError):
        return {}


def shipped_name(path, listing=SHIPPED_LIST) -> str | None:
    """The shipped model this file is a byte-identical copy of (its name in the listing), else None."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = file_sha256(path)
    return next((name for name, entry in shipped_models(listing).items() if entry.get("sha256") == digest), None)


@dataclass
class Kept:
    """The model a write replaced: where its copy is, and which shipped model it was (None: the user's)."""
    backup: Path
    shipped: str | None

    @property
    def who(self) -> str:
        return f"the shipped model ({self.shipped})" if self.shipped else "your previous model"


def backup_path(path, shipped: bool) -> Path:
    path = Path(path)
    return path.with_name(f"{path.stem}.{'shipped' if shipped else 'prev'}{path.suffix}")


def keep_previous(path, listing=SHIPPED_LIST) -> Kept | None:
    """Copy the model at `path` aside before it is replaced (call it right before writing). None when there
    is nothing at `path`."""
    path = Path(path)
    if not path.is_file():
        return None
    shipped = shipped_name(path, listing)
    backup = backup_path(path, shipped is not None)
    if not (shipped and backup.is_file() and file_sha256(backup) == file_sha256(path)):
        with atomic_path(backup) as tmp:
            tmp.write_bytes(path.read_bytes())
    return Kept(backup, shipped)


# --- comparing the old and new model's figures ----------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One column of the comparison: a metric key, how it is shown, and which way is better."""
    key: str
    label: str
    higher_is_better: bool = True
    percent: bool = False

    def show(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{100 * value:.1f}" if self.percent else f"{value:.3f}"

    def worse(self, old, new) -> bool:
        if old is None or new is None or math.isnan(old) or math.isnan(new):
            return False
        return (old - new if self.higher_is_better else new - old) > WORSE_MARGIN


def comparison_rows(old: dict, new: dict, figures) -> list:
    """[(test set, {figure label: 'old -> new'}, [figures that got worse])] for the test sets both have.
    old/new: {test set name: {metric key: value}}."""
    rows = []
    for name in [n for n in new if n in old]:
        cells = {f.label: f"{f.show(old[name].get(f.key))} -> {f.show(new[name].get(f.key))}" for f in figures}
        worse = [f for f in figures if f.worse(old[name].get(f.key), new[name].get(f.key))]
        rows.append((name, cells, worse))
    return rows


def replacement_report(path, kept: Kept | None, old: dict, new: dict, figures, main: str) -> str:
    """What the write did to the model at `path`, as lines for the user: the old/new table on the test sets
    both were scored on, a plain verdict, where the previous model is and how to go back to it.
    `main` is the label of the figure that decides 'worse' (the others are shown)."""
    path = Path(path)
    if kept is None:
        return f"wrote {path} (a new file: nothing was replaced)"
    lines = [f"wrote {path}; it replaced {kept.who}, kept as {kept.backup}"]
    rows = comparison_rows(old, new, figures)
    if not rows:
        lines.append("no test set scored both models, so they were not compared "
                     "(--test_examples_path names one)")
    else:
        from .tables import format_table

        head = ["test set"] + [f"{f.label} old -> new" for f in figures] + [""]
        lines.append(format_table(head, [[name] + [cells[f.label] for f in figures]
                                         + ["WORSE" if any(f.label == main for f in worse) else ""]
                                         for name, cells, worse in rows], align="l" + "r" * len(figures) + "l"))
        worse_sets = [name for name, _, worse in rows if any(f.label == main for f in worse)]
        if worse_sets:
            lines.append(f"WORSE: on {', '.join(worse_sets)} the new model's {main} is below that of {kept.who}.")
        else:
            lines.append(f"not worse: on every test set both were scored on, the new model's {main} is above that "
                         f"of {kept.who}, or within {WORSE_MARGIN:g} of it.")
    lines.append(f"to go back: cp {kept.backup} {path}")
    return "\n".join(lines)


# --- what a checkpoint says about itself ----------------------------------------------------------------
def recorded_figures(path) -> dict:
    """The test figures a checkpoint carries: a classifier's test_metrics per test set, a fine-tuned MTCNN's
    evaluation on its held-out frames. {} when there are none (or the file is not ours)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a missing or foreign file has no figures; loading it elsewhere reports the problem
        return {}
    if not isinstance(ckpt, dict):
        return {}
    if isinstance(ckpt.get("metadata"), dict):  # a mask classifier
        return {t.get("source", "?"): t for t in ckpt["metadata"].get("test_metrics", [])}
    meta = ckpt.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("evaluation"), dict):  # a fine-tuned MTCNN
        return {f"held-out frames of {meta.get('data', {}).get('labels', '?')}": meta["evaluation"].get("after", {})}
    return {}


def describe_model(path, role) -> str:
    """'classifier: models/detector.pt (shipped; accuracy 94.6% on mask_dataset/facemask853/test, ...)': which
    file, whether it is a shipped model or which active-learning version, and the figures recorded for it."""
    if path is None:
        return f"{role}: pretrained weights (facenet-pytorch's MTCNN)"
    path, tags = Path(path), []
    if path.parent.parent.name == "versions":  # models/versions/vNNNN/<file>, promoted by active_learning.py
        tags.append(f"version {path.parent.name}{_version_figures(path.parent)}")
    shipped = shipped_name(path)
    if shipped:
        tags.append("shipped")
    figures = []
    for name, m in recorded_figures(path).items():
        if "accuracy" in m:
            figures.append(f"accuracy {100 * m['accuracy']:.1f}% on {name}")
        elif "ap50" in m:
            figures.append(f"AP@0.5 {100 * m['ap50']:.1f}, {m.get('false_per_frame', float('nan')):.2f} false/frame "
                           f"on {name}")
    tags += figures or ([] if tags and tags[0].startswith("version") else ["no test figures recorded"])
    return f"{role}: {path} ({'; '.join(tags)})"


def _version_figures(folder) -> str:
    try:
        m = json.loads((Path(folder) / "metrics.json").read_text())
    except (OSError, ValueError):
        return ""
    new = m.get("candidate", {})
    ap, acc = new.get("detection", {}).get("ap50"), new.get("classifier", {}).get("accuracy")
    shown = [f"AP@0.5 {100 * ap:.1f}" if ap is not None else "", f"accuracy {100 * acc:.1f}%" if acc is not None else ""]
    return (f", {m.get('decision', '?')}: " + ", ".join(x for x in shown if x)
            + f" on {m.get('eval_frames', '?')} held-out frames") if any(shown) else ""


# --- maintaining the list -------------------------------------------------------------------------------
def record(paths, about="", listing=SHIPPED_LIST):
    """Add (or refresh) shipped models in the listing."""
    listing = Path(listing)
    doc = {"about": "SHA-256 of the models shipped with the repo: scripts never lose these (cctv/model_safety.py)",
           "models": shipped_models(listing)}
    for p in paths:
        rel = Path(p).resolve().relative_to(REPO_ROOT).as_posix()
        doc["models"][rel] = {"sha256": file_sha256(p), "about": about or doc["models"].get(rel, {}).get("about", "")}
    write_json(listing, doc)


def check(listing=SHIPPED_LIST) -> list:
    """[(name, problem)] for listed models missing or changed at their listed path."""
    problems = []
    for name, entry in shipped_models(listing).items():
        p = REPO_ROOT / name
        if not p.is_file():
            problems.append((name, "missing"))
        elif file_sha256(p) != entry.get("sha256"):
            problems.append((name, f"changed (the shipped copy: {backup_path(p, True)})"))
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description="The list of shipped models (models/SHIPPED.json).")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record", help="list these model files as shipped (their current content)")
    r.add_argument("paths", nargs="+")
    r.add_argument("--about", default="", help="one line: what the model is")
    sub.add_parser("check", help="are the shipped models intact at their paths?")
    opt = p.parse_args(argv)
    if opt.command == "record":
        record(opt.paths, opt.about)
        return 0
    problems = check()
    for name, problem in problems:
        print(f"{name}: {problem}")
    if not problems:
        print(f"all {len(shipped_models())} shipped models intact")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
