"""A run's timeline and manifest, what the compliance report plots (`cctv/report/`).

`<output>.timeline.jsonl`: one line per second of video (`every_s`), appended as the run goes (a live
camera's report reads it while it grows), each line written whole in one write:

    {"time_s": 12.0, "frame": 300, "frames": 25, "faces": 3.96, "protected": 2.0, "ratio": 0.5051,
     "people_in_view": 4, "people_seen": 5, "wall_time": "2026-12-01T17:08:37+00:00"}

`time_s` / `frame`: the interval's first frame; `faces` / `protected`: mean per frame over the interval;
`ratio`: protected faces / faces over the interval (null when no face was seen); `people_in_view`: most
people in view at once in the interval, `people_seen`: distinct people so far (null without tracking);
`wall_time`: when the interval began (live sources: the clock; files: the run's start + video time).

`<output>.run.json`: the run's manifest (source, start and end, fps, frames, models and their versions,
the summary counts, alert settings), written atomically at the start (`state: running`) and at the end
(`finished` or `interrupted`).
"""
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from .atomic import write_json, write_text

TIMELINE_SUFFIX = ".timeline.jsonl"
MANIFEST_SUFFIX = ".run.json"


def timeline_path(output_path) -> Path:
    return Path(f"{output_path}{TIMELINE_SUFFIX}")


def manifest_path(output_path) -> Path:
    return Path(f"{output_path}{MANIFEST_SUFFIX}")


def now():
    """Local wall-clock time with its UTC offset (ISO strings then sort and compare across zones)."""
    return datetime.now().astimezone()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Timeline:
    """Collects per-frame counts into one line per `every_s` seconds of video."""

    def __init__(self, path, fps, start: datetime, live=False, every_s=1.0, resume=False):
        """`resume`: a restarted camera goes on with its timeline; else this run's replaces a previous run's."""
        self.path, self.fps, self.start, self.live = Path(path), float(fps), start, live
        self.frames_per_line = max(1, round(every_s * self.fps))
        self._reset(None)
        if not (resume and self.path.is_file()):
            write_text(self.path, "")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def _reset(self, first_frame):
        self.first, self.count, self.faces, self.protected = first_frame, 0, 0, 0
        self.people_in_view, self.people_seen, self.wall = None, None, None

    def add(self, frame, faces, protected, people_in_view=None, people_seen=None):
        """One frame's counts. People counts come from tracking (None without it)."""
        if self.first is None:
            self._reset(frame)
            self.wall = now() if self.live else self.start + timedelta(seconds=frame / self.fps)
        self.count += 1
        self.faces += faces
        self.protected += protected
        if people_in_view is not None:
            self.people_in_view = max(people_in_view, self.people_in_view or 0)
        if people_seen is not None:
            self.people_seen = people_seen
        if self.count >= self.frames_per_line:
            self.flush()

    def flush(self):
        """Write the interval collected so far (also a partial one, at the end of a run)."""
        if self.first is None or self.fd is None:
            return
        line = {"time_s": round(self.first / self.fps, 3), "frame": self.first, "frames": self.count,
                "faces": round(self.faces / self.count, 2), "protected": round(self.protected / self.count, 2),
                "ratio": round(self.protected / self.faces, 4) if self.faces else None,
                "people_in_view": self.people_in_view, "people_seen": self.people_seen,
                "wall_time": iso(self.wall)}
        os.write(self.fd, (json.dumps(line) + "\n").encode("utf-8"))
        self._reset(None)

    def close(self):
        self.flush()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def write_manifest(output_path, **fields):
    """`<output>.run.json`, replaced atomically (a report made meanwhile reads the old or the new one)."""
    write_json(manifest_path(output_path), fields)
