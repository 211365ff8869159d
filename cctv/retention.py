"""Retention: what the job and the labeling loop keep of people's images, and for how long.

`prune_outputs(folder, days)` removes, in an outputs folder (not its subfolders), the files of runs last
written more than `days` days ago: the recording, its events, timeline, manifest and report, and the files
in its `.snapshots/` and `.clips/` folders. Only runs are touched (a run is known by its
`<name>.events.jsonl`, `.run.json`, `.timeline.jsonl`, `.snapshots/` or `.clips/`): other files in the
folder stay, whatever their name.

`prune_labeling(batches_root, uncertain_dir, days)` removes labeling batches whose newest file is older
than `days` days, and frames still waiting in the uncertain-frames folder. A removed batch leaves an empty
`.NNNN.removed` folder behind, so its number is never given to a new batch.

Never follows links, never deletes models (nothing under either function's folders ends in .pt), and
returns what it removed, for the caller's log.
"""
import os
import shutil
import stat
import time
from pathlib import Path

from .errors import check_range

DAY_S = 86400.0
RUN_FILE_SUFFIXES = (".events.jsonl", ".run.json", ".timeline.jsonl", ".report.html")
RUN_FOLDER_SUFFIXES = (".snapshots", ".clips")
REMOVED_BATCH = ".{}.removed"


def check_days(days, flag="--retention_days"):
    if days is not None:
        check_range(flag, days, 0, lo_open=True)


def _cutoff(days, now):
    return (time.time() if now is None else now) - days * DAY_S


def _is_old_file(path: Path, cutoff):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff


def run_bases(folder) -> set:
    """Names of the runs in `folder` (the recording's file name, whether or not it is still there)."""
    bases = set()
    for entry in os.scandir(folder):
        for suffix in RUN_FILE_SUFFIXES + RUN_FOLDER_SUFFIXES:
            if entry.name.endswith(suffix) and len(entry.name) > len(suffix) and not entry.name.startswith("."):
                bases.add(entry.name[:-len(suffix)])
    return bases


def prune_outputs(folder, days, keep=(), now=None) -> list:
    """Remove the old files of runs in `folder`; `keep`: recordings (paths) of runs in progress, left alone.
    Returns the removed paths."""
    folder = Path(folder)
    if not days or not folder.is_dir():
        return []
    cutoff, kept = _cutoff(days, now), {Path(k).name for k in keep}
    removed = []
    for base in sorted(run_bases(folder) - kept):
        for path in [folder / base] + [folder / (base + s) for s in RUN_FILE_SUFFIXES]:
            if path.suffix != ".pt" and _is_old_file(path, cutoff):
                path.unlink()
                removed.append(path)
        for sub in (folder / (base + s) for s in RUN_FOLDER_SUFFIXES):
            removed += _prune_tree(sub, cutoff)
    return removed


def _prune_tree(folder: Path, cutoff) -> list:
    """Old files under `folder` (a real folder, not a link); folders left empty go too."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    removed = []
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            path = Path(root) / name
            if _is_old_file(path, cutoff):
                path.unlink()
                removed.append(path)
        try:
            os.rmdir(root)  # only when empty
        except OSError:
            pass
    return removed


def prune_labeling(batches_root, uncertain_dir, days, now=None) -> dict:
    """Remove labeling batches and waiting uncertain frames older than `days` days.
    Returns {"batches": [names], "frames": [paths]}."""
    from .active_learning.batches import SIDECAR, complete_frames, list_batches

    if not days:
        return {"batches": [], "frames": []}
    cutoff = _cutoff(days, now)
    batches = []
    for batch in list_batches(batches_root):
        if _newest_mtime(batch.folder) < cutoff:
            _remove_batch(batch.folder)
            batches.append(batch.name)
    _finish_removals(batches_root)
    frames = []
    for jpeg in complete_frames(uncertain_dir) if uncertain_dir else []:
        if _is_old_file(jpeg, cutoff):
            jpeg.unlink()  # the JPEG first: a reader never finds a JPEG without its sidecar
            Path(f"{jpeg}{SIDECAR}").unlink(missing_ok=True)
            frames.append(jpeg)
    return {"batches": batches, "frames": frames}


def _newest_mtime(folder: Path):
    newest = os.lstat(folder).st_mtime
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(Path(root) / name).st_mtime)
            except FileNotFoundError:
                continue
    return newest


def _remove_batch(folder: Path):
    """Rename out of the batch list at once (atomic), then empty; the empty folder keeps the number taken."""
    tombstone = folder.with_name(REMOVED_BATCH.format(folder.name))
    os.rename(folder, tombstone)
    _empty(tombstone)


def _finish_removals(batches_root):
    """A run killed while emptying a removed batch left files in its tombstone: finish the job."""
    root = Path(batches_root)
    if root.is_dir():
        for p in root.iterdir():
            if p.name.endswith(".removed") and p.is_dir() and not p.is_symlink():
                _empty(p)


def _empty(folder: Path):
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def describe(paths, root=None, limit=8) -> str:
    """'3 files: a.mp4, a.mp4.events.jsonl, ...' for a log line."""
    names = [str(Path(p).relative_to(root)) if root else Path(p).name for p in paths]
    shown = ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
    return f"{len(names)} file{'s' if len(names) != 1 else ''}" + (f": {shown}" if names else "")
