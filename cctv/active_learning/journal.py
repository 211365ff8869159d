"""The loop's locks and its JSONL history."""
import fcntl
import json
import os
import time
from pathlib import Path

from ..atomic import write_error


class RunLock:
    """An exclusive, non-blocking flock on `<workdir>/.lock`; the kernel releases it when the process dies,
    so a killed run never leaves a stale lock."""

    def __init__(self, path):
        self.path = Path(path)
        self._fd = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class History:
    """Append-only JSONL: one line per step, flushed and fsynced before the run goes on."""

    def __init__(self, path, echo=True):
        self.path = Path(path)
        self.echo = echo

    def log(self, step, **fields):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), "step": step, **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.path, "a+b") as f:
                if f.seek(0, os.SEEK_END) and _last_byte(f) != b"\n":
                    f.write(b"\n")  # a line torn by a kill (or a full disk) must not swallow this one
                f.write((json.dumps(entry, default=str) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise write_error(self.path, e) from None
        if self.echo:
            detail = ", ".join(f"{k}={v}" for k, v in fields.items() if not isinstance(v, (dict, list)))
            print(f"[{entry['time']}] {step}" + (f": {detail}" if detail else ""), flush=True)

    def entries(self) -> list:
        """Every readable line (a line cut short by a kill is skipped)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _last_byte(f) -> bytes:
    f.seek(-1, os.SEEK_END)
    return f.read(1)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
