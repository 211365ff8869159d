"""Superb AI Suite through the real `spb` CLI: upload a batch with its pre-labels (dataset = the batch's
name), and download the project to find batches whose labels are all done."""
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .batches import SIDECAR


@dataclass
class SpbConfig:
    project: str
    dataset_prefix: str = "batch-"
    ready_statuses: tuple = ("SUBMITTED",)  # a label counts as done in these statuses
    spb: str = ""
    timeout_s: float = 600

    def command(self):
        return self.spb or os.environ.get("CCTV_SPB") or str(Path(sys.executable).parent / "spb")

    def dataset(self, batch) -> str:
        return f"{self.dataset_prefix}{batch.name}"


def _spb(cfg: SpbConfig, args, cwd):
    from ..suite_cli import check_credentials

    check_credentials()  # without them spb only says "No such project"
    try:
        done = subprocess.run([cfg.command(), *args], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=cfg.timeout_s)
    except FileNotFoundError:
        raise UserError(f"{cfg.command()}: spb CLI not found (install spb-cli, or drop labels in the batch's "
                        f"labels/ folder instead)") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"spb {' '.join(args[:2])} took over {cfg.timeout_s:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        raise UserError(f"spb {' '.join(args[:2])} failed (exit {done.returncode}): {' | '.join(tail)}")
    return done.stdout


def upload_batch(cfg: SpbConfig, batch):
    """`spb upload dataset --include-label` from a copy of the frames (spb rewrites the label files it
    uploads); then the `uploaded.json` marker. A run killed before the marker uploads again (same keys)."""
    staging = batch.folder / ".upload"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(batch.frames_dir, staging)
    try:
        out = _spb(cfg, ["upload", "dataset", "-p", cfg.project, "-n", cfg.dataset(batch), "--include-label", "-y"],
                   cwd=staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    from ..atomic import write_json

    write_json(batch.folder / "uploaded.json", {"project": cfg.project, "dataset": cfg.dataset(batch),
                                                "output": out.strip().splitlines()[-4:]})


def download_ready_labels(cfg: SpbConfig, batches, scratch: Path) -> list:
    """Download the project once; each batch whose every frame has a label in a ready status gets its
    labels/ folder (copied as `.labels.partial` and renamed). Returns the batches that got labels."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    got = []
    try:
        _spb(cfg, ["download", "-p", cfg.project, "-d", str(scratch), "-y"], cwd=scratch)
        for batch in batches:
            source = scratch / cfg.dataset(batch)
            if not source.is_dir() or not _all_ready(source, batch.frame_names(), cfg.ready_statuses):
                continue
            partial = batch.folder / ".labels.partial"
            if partial.exists():
                shutil.rmtree(partial)
            shutil.copytree(source, partial / source.name)
            if (scratch / "project.json").is_file():
                shutil.copyfile(scratch / "project.json", partial / "project.json")
            os.rename(partial, batch.labels_dir)
            got.append(batch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return got


def _all_ready(folder, frame_names, statuses) -> bool:
    for name in frame_names:
        try:
            doc = json.loads((folder / (name + SIDECAR)).read_text())
        except (OSError, ValueError):
            return False
        if not (folder / name).is_file() or doc.get("status") not in statuses:
            return False
    return bool(frame_names)
