"""The report of a run in progress: rewritten (atomically) every `every_s` seconds by a background thread, so
that a browser reloading `<output>.report.html` always finds a whole page and the frames never wait for it."""
import threading
import time
from pathlib import Path

from .build import write_report

REPORT_SUFFIX = ".report.html"


def report_path(output_path) -> Path:
    return Path(f"{output_path}{REPORT_SUFFIX}")


class RunReport:
    """`poll()` from the frame loop starts a rewrite when one is due (never two at once); `close()` waits for
    it and writes the final report."""

    def __init__(self, output_path, every_s=None, warn=print):
        self.runs, self.target = [str(output_path)], report_path(output_path)
        self.every_s, self.warn, self.thread = every_s, warn, None
        self.due = time.monotonic() + every_s if every_s else float("inf")

    def poll(self):
        if time.monotonic() < self.due or (self.thread is not None and self.thread.is_alive()):
            return
        self.due = time.monotonic() + self.every_s
        self.thread = threading.Thread(target=self.write, name="run-report", daemon=True)
        self.thread.start()

    def write(self):
        try:
            return write_report(self.runs, self.target)
        except Exception as e:  # a report must never stop the camera
            self.warn(f"report {self.target} not written ({e.__class__.__name__}: {e})")
            return None

    def close(self):
        if self.thread is not None:
            self.thread.join()
        return self.write()
