"""Atomic file output: write to a temporary file beside the target, then rename over it.
A reader (or a crash) never sees a half-written file."""
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error remove it.
    `suffix` defaults to the target's own (so writers that infer a format from the name still work)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data: bytes):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent=2):
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def save_torch(obj, path):
    """torch.save through a temporary file, so an interrupted save keeps the last good model."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
