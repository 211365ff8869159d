"""Atomic file output: write to a temporary file beside the target, then rename over it.
A reader (or a crash) never sees a half-written file."""
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error remove it.
    `suffix` defaults to the target's own (so writers that infer a format from the name still work).
    The temporary name is chosen before the file is made, inside the cleanup's reach: a stop signal at any
    point (Ctrl-C, SIGTERM) leaves no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    tmp = None
    try:
        while True:
            tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(6)}{suffix}")
            try:  # 0o666 less the umask: the usual permissions of an output
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise


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
