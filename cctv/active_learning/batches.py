"""Labeling batches: the uncertain-frames folder is emptied, frame by frame, into numbered batch folders.

    <workdir>/batches/0003/batch.json          the batch's frames (written before any frame moves)
    <workdir>/batches/0003/frames/<f>.jpg      the frame and its pre-label sidecar <f>.jpg.json
    <workdir>/batches/0003/uploaded.json       marker: uploaded to the Suite (when spb is configured)
    <workdir>/batches/0003/labels/             the labels, in any format cctv.labels reads

A batch is built as `.0003.partial/` (its batch.json lists the frames it takes, then each file is renamed
into it) and renamed to `0003/` when every frame is in; a run killed half way finds the partial folder
and finishes the moves. Renames within one file system are atomic, so a frame is always in exactly one
place, and a JPEG is taken only when its sidecar is beside it (cctv.uncertain renames the sidecar first).
"""
import errno
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_json
from ..errors import UserError
from .journal import fsync_dir

BATCH_NAME = re.compile(r"^(\d{4,})$")
PARTIAL_NAME = re.compile(r"^\.(\d{4,})\.partial$")
REMOVED_NAME = re.compile(r"^\.(\d{4,})\.removed$")  # emptied by retention (cctv/retention.py): number taken
FRAME_SUFFIXES = (".jpg", ".jpeg")
SIDECAR = ".json"


def sidecar_of(jpeg: Path) -> Path:
    return jpeg.with_name(jpeg.name + SIDECAR)


def complete_frames(folder) -> list:
    """JPEGs (not temp files) whose sidecar is beside them, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        name = entry.name
        if name.startswith(".") or not name.lower().endswith(FRAME_SUFFIXES) or not entry.is_file():
            continue
        if (folder / (name + SIDECAR)).is_file():
            try:
                found.append((entry.stat().st_mtime, name))
            except FileNotFoundError:  # taken by someone else meanwhile
                continue
    return [folder / name for _, name in sorted(found)]


@dataclass
class Batch:
    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def frames_dir(self) -> Path:
        return self.folder / "frames"

    @property
    def labels_dir(self) -> Path:
        return self.folder / "labels"

    @property
    def uploaded(self) -> bool:
        return (self.folder / "uploaded.json").is_file()

    def manifest(self) -> dict:
        """batch.json; UserError naming it when it is unreadable (`run` rebuilds it: repair_manifests)."""
        path = self.folder / "batch.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: unreadable batch manifest ({e.__class__.__name__}: {str(e)[:120]}); "
                            f"`active_learning.py run` rebuilds it from the batch's frames/") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list):
            raise UserError(f"{path}: not a batch manifest (no frame list); `active_learning.py run` rebuilds "
                            f"it from the batch's frames/")
        return doc

    def frame_names(self) -> list:
        return list(self.manifest()["frames"])

    def labels_ready(self, settle_s=0.0) -> bool:
        """Labels are there, and either renamed into place whole (ready at once) or unchanged for `settle_s`
        seconds (a person copying a folder in is not atomic).
        A rename touches only the folder, so its ctime is newer than everything inside; a copy keeps touching
        what is inside after the folder was made (`cp -a`, which stamps the folder last, is done by then)."""
        if not self.labels_dir.is_dir():
            return False
        inside = [p.stat() for p in self.labels_dir.rglob("*")]
        if not inside:
            return False
        folder = self.labels_dir.stat()
        if folder.st_ctime_ns > max(st.st_ctime_ns for st in inside):
            return True
        return time.time() - max(folder.st_mtime, *(st.st_mtime for st in inside)) >= settle_s


def list_batches(batches_root) -> list:
    root = Path(batches_root)
    if not root.is_dir():
        return []
    found = [(int(p.name), p) for p in root.iterdir() if p.is_dir() and BATCH_NAME.match(p.name)]
    return [Batch(p) for _, p in sorted(found)]


def _partials(batches_root) -> list:
    root = Path(batches_root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and PARTIAL_NAME.match(p.name))


def _next_number(batches_root) -> int:
    root = Path(batches_root)
    numbers = [0]
    if root.is_dir():
        for p in root.iterdir():
            m = BATCH_NAME.match(p.name) or PARTIAL_NAME.match(p.name) or REMOVED_NAME.match(p.name)
            if m:
                numbers.append(int(m.group(1)))
    return max(numbers) + 1


def check_same_filesystem(uncertain_dir, batches_root):
    """Frames move by rename, which is only atomic within one file system."""
    Path(batches_root).mkdir(parents=True, exist_ok=True)
    if os.stat(uncertain_dir).st_dev != os.stat(batches_root).st_dev:
        raise UserError(f"{uncertain_dir} and {batches_root} are on different file systems: frames move by "
                        f"atomic rename, so put the work folder on the same disk as --uncertain_frames_dir")


def _move(src: Path, dst: Path) -> bool:
    """Rename src to dst when src is still there; True if it moved (or had moved before)."""
    try:
        os.rename(src, dst)
        return True
    except FileNotFoundError:
        return dst.exists()
    except OSError as e:
        if e.errno == errno.EXDEV:
            raise UserError(f"{src} -> {dst}: different file systems (frames move by atomic rename)") from None
        raise


def take_batch(uncertain_dir, batches_root, frames, history) -> Batch:
    """Move `frames` (complete JPEGs in `uncertain_dir`) with their sidecars into a new numbered batch."""
    root = Path(batches_root)
    number = _next_number(root)
    partial = root / f".{number:04d}.partial"
    (partial / "frames").mkdir(parents=True)
    write_json(partial / "batch.json", {
        "batch": f"{number:04d}", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source": str(Path(uncertain_dir).resolve()), "frames": [p.name for p in frames]})
    history.log("batch-planned", batch=f"{number:04d}", frames=len(frames))
    return _finish_partial(partial, history)


def recover_partial_batches(batches_root, history) -> list:
    """Finish the batches a killed run left half moved; a partial with no manifest had nothing moved."""
    done = []
    for partial in _partials(batches_root):
        if not (partial / "batch.json").is_file():
            shutil.rmtree(partial)
            history.log("batch-discarded-empty-partial", folder=partial.name)
            continue
        history.log("batch-resume", folder=partial.name)
        done.append(_finish_partial(partial, history))
    return done


def repair_manifests(batches_root, history) -> list:
    """A committed batch whose batch.json is unreadable (a disk fault, a hand edit): its frames/ folder holds
    exactly its frames, so the list is rebuilt from there."""
    repaired = []
    for batch in list_batches(batches_root):
        try:
            batch.manifest()
        except UserError as e:
            frames = sorted(p.name for p in complete_frames(batch.frames_dir))
            write_json(batch.folder / "batch.json", {"batch": batch.name, "frames": frames,
                                                     "repaired": time.strftime("%Y-%m-%dT%H:%M:%S")})
            history.log("batch-manifest-repaired", batch=batch.name, frames=len(frames), problem=str(e))
            repaired.append(batch.name)
    return repaired


def _finish_partial(partial: Path, history) -> Batch:
    manifest = json.loads((partial / "batch.json").read_text())
    source = Path(manifest["source"])
    frames_dir = partial / "frames"
    missing = []
    for name in manifest["frames"]:
        jpeg = source / name
        # the sidecar first: a JPEG left behind alone would look like a frame still being written
        moved_sidecar = _move(sidecar_of(jpeg), frames_dir / (name + SIDECAR))
        moved_jpeg = _move(jpeg, frames_dir / name)
        if not (moved_sidecar and moved_jpeg):
            missing.append(name)
    if missing:
        # only if someone deleted frames by hand: keep the batch consistent with what is really there
        manifest["frames"] = [n for n in manifest["frames"] if n not in missing]
        manifest["missing"] = missing
        write_json(partial / "batch.json", manifest)
    fsync_dir(frames_dir)
    final = partial.parent / PARTIAL_NAME.match(partial.name).group(1)
    os.rename(partial, final)
    fsync_dir(partial.parent)
    history.log("batch-created", batch=final.name, frames=len(manifest["frames"]),
                **({"missing": missing} if missing else {}))
    return Batch(final)
