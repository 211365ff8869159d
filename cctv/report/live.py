"""The report of a run in progress: rewritten (atomically) every `every_s` seconds by a background thread, so
that a browser reloading `<output>.report.html` always finds a whole page and the frames never wait for it.
A week-long run's report takes a while to make: the rewrites then space out, so that the report never takes
more than a fifth of the time."""
import threading
import time
from pathlib import Path

from .build import write_report

REPORT_SUFFIX = ".report.html"
SHARE_OF_TIME = 5  # the next rewrite waits at least 5x as long as the last one took


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
        started = time.monotonic()
        try:
            return write_report(self.runs, self.target)
        except Exception as e:  # a report must never stop the camera
            self.warn(f"report {self.target} not written ({e.__class__.__name__}: {e})")
            return None
        finally:
            if self.every_s:  # a long run's report takes longer to make: never more than 1/5 of the time on it
                self.due = max(self.due, started + SHARE_OF_TIME * (time.monotonic() - started))

    def close(self):
        if self.thread is not None:
            self.thread.join()
        return self.write()
