"""Atomic file output: write to a temporary file beside the target, then rename over it.
A reader (or a crash) never sees a half-written file, and a full disk leaves the previous file in place.

A write that fails for want of space or permission is a `UserError` naming the target
(`<path>: disk full (No space left on device)`), with the temporary file removed."""
import errno
import io
import json
import os
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def write_error(path, e: OSError) -> Exception:
    """The UserError for an OSError met while writing `path`; other errors are returned as they are."""
    if e.errno in DISK_FULL:
        return UserError(f"{path}: disk full ({e.strerror or e})")
    if e.errno in NOT_WRITABLE:
        return UserError(f"{path}: cannot write here ({e.strerror or e})")
    return e


@contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; on success rename it to `path`, on error remove it.
    `suffix` defaults to the target's own (so writers that infer a format from the name still work).
    The temporary name is chosen before the file is made, inside the cleanup's reach: a stop signal at any
    point (Ctrl-C, SIGTERM) leaves no temporary file behind."""
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(6)}{suffix}")
            try:  # 0o666 less the umask: the usual permissions of an output
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(e, OSError):
            raise write_error(path, e) from None
        raise


def check_writable(path, what="output"):
    """Fail early (before any work) when `path`'s folder can't be created or written: a file in the way, a
    read-only mount, no permission. Creates nothing: a probe file goes into the nearest existing folder."""
    folder = Path(path).absolute().parent
    existing = next(p for p in (folder, *folder.parents) if os.path.lexists(p))
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{Path(path).parent}: {what} folder is not writable ({e.strerror or e})") from None


def check_writable_dir(folder, what):
    check_writable(Path(folder) / "probe", what)


def write_bytes(path, data: bytes, suffix=None):
    with atomic_path(path, suffix) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text: str):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, indent=2):
    write_text(path, json.dumps(obj, indent=indent) + "\n")


def save_torch(obj, path):
    """torch.save through a temporary file, so an interrupted save keeps the last good model. Serialised in
    memory first: torch's own file writer reports a full disk as "unexpected pos" or an iostream error,
    a plain write says ENOSPC."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())
