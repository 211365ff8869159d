"""`active_learning.py run` (do whatever is due, resuming whatever a killed run left) and `status`."""
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import model_registry as registry
from ..atomic import check_writable_dir, write_json
from ..errors import UserError, check_range, check_threads
from ..retention import check_days, prune_labeling, prune_outputs
from ..tables import format_table, percent
from .batches import (check_same_filesystem, complete_frames, list_batches, recover_partial_batches,
                      repair_manifests, take_batch)
from .journal import History, RunLock, fsync_dir
from .training import (TrainSettings, decide, evaluate_models, load_batch_labels, split_batch,
                       train_classifier_candidate, train_mtcnn)


@dataclass
class LoopConfig:
    """`active_learning.py`'s settings (its flags' names; the fine-tuning ones in `train`)."""
    workdir: str = "runs/active_learning"
    uncertain_frames_dir: str | None = None  # default <workdir>/uncertain
    models_dir: str = "models"
    batch_frames: int = 50
    labels_settle_s: float = 60.0
    reference_labels_dir: str | None = None
    tolerance: float = 0.0
    spb_project: str | None = None
    spb_ready_statuses: tuple = ("SUBMITTED",)
    threads: int = 2
    retention_days: float | None = None  # batches, waiting frames (and outputs_dir's runs) older than this go
    outputs_dir: str | None = None        # the main job's outputs folder, pruned with the same retention
    train: TrainSettings = field(default_factory=TrainSettings)

    @property
    def uncertain(self) -> Path:
        return Path(self.uncertain_frames_dir or Path(self.workdir) / "uncertain")

    @property
    def batches_root(self) -> Path:
        return Path(self.workdir) / "batches"


def run_loop(cfg: LoopConfig) -> dict:
    """One cron tick. Returns what happened: {"busy": bool, "batches": [...], "versions": [...]}."""
    if cfg.batch_frames < 1:
        raise UserError(f"--batch_frames must be at least 1, got {cfg.batch_frames}")
    check_days(cfg.retention_days)
    check_threads(cfg.threads)
    _check_numbers(cfg)
    for folder, flag in ((cfg.workdir, "--workdir"), (cfg.uncertain, "--uncertain_frames_dir"),
                         (registry.versions_dir(cfg.models_dir), "--models_dir")):
        check_writable_dir(folder, flag)  # before any work: a round would otherwise fail only at its end
    workdir = Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # The work folder's lock, then the models folder's: two sites sharing one models folder take turns.
    locks = [RunLock(workdir / ".lock")]
    models_lock = Path(cfg.models_dir) / ".lock"
    if models_lock.resolve() != locks[0].path.resolve():
        locks.append(RunLock(models_lock))
    held = []
    try:
        for lock in locks:
            if not lock.acquire():
                print(f"another active_learning.py run holds {lock.path}: nothing to do this time")
                return {"busy": True, "batches": [], "versions": []}
            held.append(lock)
        return _tick(cfg, History(workdir / "history.jsonl"))
    finally:
        for lock in reversed(held):
            lock.release()


def _check_numbers(cfg):
    t = cfg.train
    check_range("--labels_settle_s", cfg.labels_settle_s, 0)
    check_range("--tolerance", cfg.tolerance, 0)
    check_range("--holdout_fraction", t.holdout_fraction, 0, 1, hi_open=True)
    check_range("--max_train_frames", t.max_train_frames, 0)
    for flag in ("mtcnn_epochs", "mtcnn_batch_size", "classifier_epochs", "classifier_batch_per_class",
                 "classifier_examples_per_class"):
        check_range(f"--{flag}", getattr(t, flag), 1)
    for flag in ("mtcnn_lr", "classifier_lr"):
        check_range(f"--{flag}", getattr(t, flag), 0, lo_open=True)


def _tick(cfg, history) -> dict:
    history.log("run-start", pid=os.getpid())
    outcome = {"busy": False, "batches": [], "versions": []}
    recover_partial_batches(cfg.batches_root, history)
    repair_manifests(cfg.batches_root, history)
    _retention(cfg, history)
    _repair_current_pointer(cfg.models_dir, history)
    outcome["batches"] = _collect(cfg, history)
    if cfg.spb_project:
        _sync_suite(cfg, history)
    version = _training_round(cfg, history)
    if version:
        outcome["versions"].append(version)
    history.log("run-end")
    print(tick_text(cfg, outcome))
    return outcome


def _retention(cfg, history):
    """--retention_days: old labeling batches and waiting frames go (and old runs in --outputs_dir); one
    history line says what was removed. Models are never touched."""
    if not cfg.retention_days:
        return
    removed = prune_labeling(cfg.batches_root, cfg.uncertain, cfg.retention_days)
    files = prune_outputs(cfg.outputs_dir, cfg.retention_days) if cfg.outputs_dir else []
    if removed["batches"] or removed["frames"] or files:
        history.log("retention", days=cfg.retention_days, batches=removed["batches"],
                    frames=[p.name for p in removed["frames"]], files=[str(p) for p in files],
                    summary=f"{len(removed['batches'])} batches, {len(removed['frames'])} waiting frames, "
                            f"{len(files)} run files")


# --- step 1: uncertain frames -> batches ---------------------------------------------------------------
def _collect(cfg, history) -> list:
    cfg.uncertain.mkdir(parents=True, exist_ok=True)
    check_same_filesystem(cfg.uncertain, cfg.batches_root)
    made = []
    while True:
        frames = complete_frames(cfg.uncertain)
        if len(frames) < cfg.batch_frames:
            break
        made.append(take_batch(cfg.uncertain, cfg.batches_root, frames[:cfg.batch_frames], history).name)
    return made


# --- step 2: the Suite (optional) ----------------------------------------------------------------------
def _sync_suite(cfg, history):
    from .suite_sync import SpbConfig, download_ready_labels, upload_batch

    spb = SpbConfig(cfg.spb_project, ready_statuses=tuple(cfg.spb_ready_statuses))
    batches = [b for b in list_batches(cfg.batches_root) if not b.labels_dir.exists()]
    for batch in batches:
        if not batch.uploaded:
            upload_batch(spb, batch)
            history.log("batch-uploaded", batch=batch.name, project=spb.project, dataset=spb.dataset(batch))
    waiting = [b for b in batches if b.uploaded]
    if waiting:
        got = download_ready_labels(spb, waiting, Path(cfg.workdir) / ".download")
        history.log("labels-checked", waiting=[b.name for b in waiting], downloaded=[b.name for b in got])


# --- steps 3-5: fine-tune, evaluate, keep the version, promote ----------------------------------------
def trained_batches(models_dir) -> set:
    """Batches some committed version was trained on (promoted or not: a rejected round is not retried
    until new labels arrive)."""
    done = set()
    for _, folder in registry.list_versions(models_dir):
        done.update(registry.read_metrics(folder).get("batches", []))
    return done


def _partial_versions(models_dir):
    root = registry.versions_dir(models_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(".v") and p.name.endswith(".partial"))


def _read_plan(partial) -> dict | None:
    """A half-done round's plan, or None when it is missing or unreadable."""
    try:
        plan = json.loads((partial / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(plan, dict) or not {"version", "batches", "base"} <= set(plan):
        return None
    return plan


def _training_round(cfg, history):
    partials = []
    for partial in _partial_versions(cfg.models_dir):
        if _read_plan(partial) is not None:
            partials.append(partial)
        elif (partial / "plan.json").exists():  # a corrupt plan: what was made under it can't be trusted
            shutil.rmtree(partial)
            history.log("round-discarded", folder=partial.name, reason="plan.json unreadable: the round is redone")
        else:  # killed before its plan was written: nothing in it yet
            shutil.rmtree(partial)
    if partials:
        history.log("round-resume", version=partials[0].name)
        return _run_round(cfg, partials[0], history)
    labeled = _labeled_batches(cfg, history)
    if not any(name not in trained_batches(cfg.models_dir) for name in labeled):
        return None
    classifier, mtcnn = registry.current_model_paths(cfg.models_dir)
    if not Path(classifier).is_file():
        raise UserError(f"{classifier}: no classifier checkpoint to fine-tune (train one with train_mask_detector.py)")
    number = registry.next_version_number(cfg.models_dir)
    partial = registry.versions_dir(cfg.models_dir) / f".{registry.version_name(number)}.partial"
    partial.mkdir(parents=True)
    write_json(partial / "plan.json", {
        "version": registry.version_name(number), "batches": labeled,
        "base": {"version": registry.current_version(cfg.models_dir), "detector": classifier, "mtcnn": mtcnn},
        "reference_labels_dir": cfg.reference_labels_dir})
    history.log("round-planned", version=registry.version_name(number), batches=labeled,
                base=registry.current_version(cfg.models_dir) or "models/detector.pt + pretrained MTCNN")
    return _run_round(cfg, partial, history)


def _labeled_batches(cfg, history) -> list:
    """Batches whose labels are in and readable."""
    names = []
    for batch in list_batches(cfg.batches_root):
        if not batch.labels_ready(cfg.labels_settle_s):
            continue
        try:
            load_batch_labels(batch)
        except UserError as e:
            history.log("labels-unreadable", batch=batch.name, error=str(e).splitlines()[-1])
            continue
        names.append(batch.name)
    return names


def _evaluation_data(cfg, plan, history):
    train, held_out = [], []
    batches = {b.name: b for b in list_batches(cfg.batches_root)}
    for name in plan["batches"]:
        items, report = load_batch_labels(batches[name])
        t, h = split_batch(items, cfg.train.holdout_fraction, cfg.train.seed)
        train += t
        held_out += h
    if plan.get("reference_labels_dir"):
        from ..labels import load_labels

        held_out += list(load_labels(plan["reference_labels_dir"]).items)
    if cfg.train.max_train_frames:
        train = train[:cfg.train.max_train_frames]
    return train, held_out


def _run_round(cfg, partial: Path, history):
    plan = json.loads((partial / "plan.json").read_text())
    base = plan["base"]
    train, held_out = _evaluation_data(cfg, plan, history)
    s = cfg.train
    if not (partial / "mtcnn.pt").is_file():
        from ..classifier import load_classifier

        settings = {k: v for k, v in load_classifier(base["detector"]).mtcnn_settings.items()
                    if k in ("image_size", "margin", "min_face_size", "thresholds", "factor")}
        note = train_mtcnn(base["mtcnn"], settings, train, partial / "mtcnn.pt", s)
        history.log("mtcnn-trained", version=plan["version"], train_frames=len(train), note=note)
    if not (partial / "detector.pt").is_file():
        note = train_classifier_candidate(base["detector"], train, partial / "detector.pt", s)
        history.log("classifier-trained", version=plan["version"], note=note)
    if not (partial / "metrics.json").is_file():
        current = evaluate_models(base["detector"], base["mtcnn"], held_out, s)
        candidate = evaluate_models(partial / "detector.pt", partial / "mtcnn.pt", held_out, s)
        promote, reason = decide(current, candidate, cfg.tolerance)
        write_json(partial / "metrics.json", {
            "version": plan["version"], "batches": plan["batches"], "base": base,
            "train_frames": len(train), "eval_frames": len(held_out),
            "current": current, "candidate": candidate,
            "decision": "promoted" if promote else "rejected", "reason": reason})
        history.log("evaluated", version=plan["version"], decision="promoted" if promote else "rejected",
                    reason=reason)
    final = partial.with_name(plan["version"])
    os.rename(partial, final)
    fsync_dir(final.parent)
    metrics = registry.read_metrics(final)
    history.log("version-committed", version=final.name, decision=metrics["decision"])
    if metrics["decision"] == "promoted":
        registry.set_current(cfg.models_dir, final)
        history.log("promoted", version=final.name)
    return final.name


def _repair_current_pointer(models_dir, history):
    """A run killed between committing a promoted version and swapping the pointer: swap it now. (A pointer
    written after the version, e.g. a rollback by hand, is left alone.) A broken pointer is pointed again at
    the last promoted version, loudly."""
    try:
        registry.read_pointer(models_dir)
    except UserError as e:
        _replace_broken_pointer(models_dir, history, str(e).split("; ")[0])
        return
    versions = registry.list_versions(models_dir)
    if not versions:
        return
    name, folder = versions[-1]
    if registry.read_metrics(folder).get("decision") != "promoted" or registry.current_version(models_dir) == name:
        return
    pointer = Path(models_dir) / registry.CURRENT_FILE
    if pointer.is_file() and pointer.stat().st_mtime > (folder / "metrics.json").stat().st_mtime:
        return
    registry.set_current(models_dir, folder)
    history.log("promoted", version=name, resumed=True)


def _replace_broken_pointer(models_dir, history, problem):
    pointer = Path(models_dir) / registry.CURRENT_FILE
    last = registry.last_promoted_version(models_dir)
    if last is None:
        os.replace(pointer, pointer.with_name(pointer.name + ".broken"))
        print(f"warning: {problem}: no version was ever promoted, so it is moved aside to "
              f"{pointer.name}.broken and the hand-trained models are live", file=sys.stderr)
        history.log("pointer-removed", problem=problem)
        return
    registry.set_current(models_dir, last[1])
    print(f"warning: {problem}: repaired, it points again at the last promoted version {last[0]}", file=sys.stderr)
    history.log("pointer-repaired", version=last[0], problem=problem)


# --- status ---------------------------------------------------------------------------------------------
def batch_rows(cfg) -> list:
    trained = trained_batches(cfg.models_dir)
    planned = set()
    for p in _partial_versions(cfg.models_dir):
        try:
            planned.update(json.loads((p / "plan.json").read_text())["batches"])
        except (OSError, ValueError, KeyError):
            pass
    rows = []
    for batch in list_batches(cfg.batches_root):
        try:
            frames = len(batch.frame_names())
        except UserError as e:
            rows.append({"batch": batch.name, "state": "broken batch.json", "frames": "?", "problem": str(e)})
            continue
        if batch.name in trained:
            state = "trained"
        elif batch.name in planned:
            state = "training"
        elif batch.labels_ready(cfg.labels_settle_s):
            state = "labeled"
        elif batch.labels_dir.exists():
            state = "labels arriving"
        else:
            state = "awaiting labels" + (" (uploaded)" if batch.uploaded else "")
        rows.append({"batch": batch.name, "state": state, "frames": frames})
    return rows


def tick_text(cfg, outcome) -> str:
    """What a run did and, above all when it did nothing, what each step is waiting for."""
    lines = [f"new batches: {', '.join(outcome['batches'])}"] if outcome["batches"] else []
    waiting = len(complete_frames(cfg.uncertain))
    lines.append(f"uncertain frames waiting: {waiting} of {cfg.batch_frames} for the next batch (in {cfg.uncertain})")
    rows = batch_rows(cfg)
    unlabeled = [r["batch"] for r in rows if r["state"].startswith("awaiting")]
    if unlabeled:
        suite = f"label them in the Suite project {cfg.spb_project}, or " if cfg.spb_project else ""
        lines.append(f"awaiting labels: {', '.join(unlabeled)} ({suite}put each batch's labels in "
                     f"{cfg.batches_root}/<batch>/labels/)")
    settling = [r["batch"] for r in rows if r["state"] == "labels arriving"]
    if settling:
        lines.append(f"labels arriving: {', '.join(settling)} (copied in: used once unchanged for "
                     f"{cfg.labels_settle_s:g} s; a folder renamed into place is used at once)")
    for name in outcome["versions"]:
        m = registry.read_metrics(registry.versions_dir(cfg.models_dir) / name)
        lines.append(f"version {name}: {m.get('decision', '?')} ({m.get('reason', '')})")
    if not outcome["versions"]:
        lines.append("no training this run: no labeled batch that a version was not trained on yet")
    return "\n".join(lines)


def status_text(cfg) -> str:
    return status_report(cfg)[0]


def status_report(cfg):
    """(the status text, the problems found: broken files, each a one-line message naming the file)."""
    problems = []
    lines = [f"work folder {cfg.workdir}; uncertain frames {cfg.uncertain}"]
    waiting = len(complete_frames(cfg.uncertain))
    lines.append(f"uncertain frames waiting: {waiting} (a batch is taken at {cfg.batch_frames})")
    rows = batch_rows(cfg)
    lines += ["", format_table(["batch", "state", "frames"], [[r["batch"], r["state"], r["frames"]] for r in rows],
                               align="llr", sep=" ", min_widths=(6, 26, 6))]
    if not rows:
        lines.append("(no batches yet)")
    problems += [r["problem"] for r in rows if "problem" in r]
    pending = [r["batch"] for r in rows if r["state"].startswith("awaiting")]
    lines.append(f"pending labels: {', '.join(pending) if pending else 'none'}")
    try:
        current = registry.current_version(cfg.models_dir)
        classifier, mtcnn = registry.current_model_paths(cfg.models_dir)
    except UserError as e:
        problems.append(str(e))
        current = classifier = mtcnn = None
    lines += ["", version_table(registry.list_versions(cfg.models_dir), current)]
    if classifier is None:
        lines.append(f"current: {Path(cfg.models_dir) / registry.CURRENT_FILE} is broken (see below)")
    else:
        lines.append(f"current: {current or 'none promoted yet'} -> {classifier}, MTCNN {mtcnn or 'pretrained'}"
                     + ("   (* = current)" if current else ""))
    partials = _partial_versions(cfg.models_dir)
    if partials:
        lines.append(f"in progress: {', '.join(p.name for p in partials)} (the next run resumes it)")
    return "\n".join(lines), problems


def version_table(versions, current) -> str:
    """Each version's decision and figures, current -> candidate (* marks the current version)."""
    rows = []
    for name, folder in versions:
        m = registry.read_metrics(folder)
        cur, new = m.get("current", {}), m.get("candidate", {})
        rows.append([name + ("*" if name == current else ""), m.get("decision", "?"),
                     f"{percent(_get(cur, 'detection', 'ap50'))} -> {percent(_get(new, 'detection', 'ap50'))}",
                     f"{percent(_get(cur, 'classifier', 'accuracy'))} -> "
                     f"{percent(_get(new, 'classifier', 'accuracy'))}",
                     _num(new, "detection", "false_per_frame"), ",".join(m.get("batches", []))])
    return format_table(["version", "decision", "AP@0.5 cur->new", "accuracy cur->new", "false/frame new",
                         "batches"], rows, align="llrrrl")


def _get(d, *keys):
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _num(d, *keys):
    v = _get(d, *keys)
    return "-" if v is None else f"{v:.3f}"
