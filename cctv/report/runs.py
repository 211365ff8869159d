"""Finding and reading runs for the report, tolerating what a crash, a live run or a person can leave:
a torn last line, a malformed line, a missing file. Every problem becomes one line in `skipped`.

A run is known by its recording's path `<name>.mp4`; beside it: `.events.jsonl` (alerts), `.timeline.jsonl`
(counts per second), `.run.json` (manifest), `.snapshots/`, `.clips/`.
"""
import bisect
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..errors import UserError
from ..timeline import MANIFEST_SUFFIX, TIMELINE_SUFFIX

EVENTS_SUFFIX = ".events.jsonl"
RUN_SUFFIXES = (EVENTS_SUFFIX, TIMELINE_SUFFIX, MANIFEST_SUFFIX)
ALERT_FIELDS = ("time_s", "frame", "faces", "protected", "ratio")  # every alert line has them; the rest is optional
TIMELINE_FIELDS = ("time_s", "faces", "protected")


@dataclass
class Run:
    base: Path                       # the recording's path (it may be gone)
    manifest: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    timeline: list = field(default_factory=list)
    start: datetime | None = None    # wall-clock time of the first frame

    @property
    def name(self):
        return self.base.name

    @property
    def camera(self):
        return self.manifest.get("camera") or self.base.name.rsplit(".", 1)[0]

    @property
    def live(self):
        return bool(self.manifest.get("live"))

    @property
    def fps(self):
        return float(self.manifest.get("fps") or 0) or None

    @property
    def duration_s(self):
        if self.manifest.get("frames") and self.fps:
            return self.manifest["frames"] / self.fps
        if self.timeline:
            last = self.timeline[-1]
            return last["time_s"] + (last.get("frames") or 1) / (self.fps or 25.0)
        return max((e["time_s"] for e in self.events), default=0.0)

    @property
    def empty(self):
        return not self.events and not self.timeline and not self.manifest.get("frames")

    def timeline_frames(self):
        if getattr(self, "_frames", None) is None or len(self._frames) != len(self.timeline):
            self._frames = [t["frame"] for t in self.timeline]
        return self._frames

    def wall_time(self, time_s, frame=None):
        """Wall-clock time of a moment of the recording: from the timeline line it falls in (a live camera's
        clock), else the run's start + video time; None when the run has neither."""
        if self.timeline and frame is not None and self.fps:
            frames = self.timeline_frames()
            i = bisect.bisect_right(frames, frame) - 1
            if i >= 0 and self.timeline[i].get("wall"):
                return self.timeline[i]["wall"] + timedelta(seconds=(frame - frames[i]) / self.fps)
        return self.start + timedelta(seconds=time_s) if self.start else None


def find_runs(paths) -> list:
    """Recording paths of the runs named by `paths` (a run's recording or any of its files, or a folder,
    searched recursively), each once, in name order."""
    bases = []
    for path in map(Path, paths):
        if path.is_dir():
            for suffix in RUN_SUFFIXES:
                bases += [p.with_name(p.name[:-len(suffix)]) for p in path.rglob(f"*{suffix}")
                          if not p.name.startswith(".")]
        elif path.exists() or _base_of(path).exists() or any(Path(f"{_base_of(path)}{s}").exists()
                                                             for s in RUN_SUFFIXES):
            bases.append(_base_of(path))
        else:
            raise UserError(f"{path}: no such run, file or folder")
    return sorted(set(bases))


def _base_of(path: Path) -> Path:
    for suffix in RUN_SUFFIXES + (".report.html",):
        if path.name.endswith(suffix):
            return path.with_name(path.name[:-len(suffix)])
    return path


def load_run(base: Path, skipped: list) -> Run:
    run = Run(Path(base))
    run.manifest = _read_manifest(Path(f"{base}{MANIFEST_SUFFIX}"), skipped)
    run.events = _read_lines(Path(f"{base}{EVENTS_SUFFIX}"), ALERT_FIELDS, "alert", skipped)
    run.timeline = _read_lines(Path(f"{base}{TIMELINE_SUFFIX}"), TIMELINE_FIELDS, "timeline", skipped)
    run.timeline.sort(key=lambda t: t["time_s"])
    run.events.sort(key=lambda e: e["time_s"])
    run.start = _parse_time(run.manifest.get("started"))
    for t in run.timeline:
        t["wall"] = _parse_time(t.get("wall_time"))
        t.setdefault("frame", round(t["time_s"] * (run.fps or 25.0)))
    if run.start is None and run.timeline and run.timeline[0]["wall"]:
        run.start = run.timeline[0]["wall"] - timedelta(seconds=run.timeline[0]["time_s"])
    for t in run.timeline:
        if t["wall"] is None and run.start:
            t["wall"] = run.start + timedelta(seconds=t["time_s"])
    for e in run.events:
        e["wall"] = run.wall_time(e["time_s"], e.get("frame"))
    if run.empty:
        skipped.append(f"{run.name}: empty run (no frame processed, no alert): nothing to show")
    return run


def _read_manifest(path: Path, skipped) -> dict:
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict):
            return doc
        skipped.append(f"{path.name}: not a run manifest (a JSON object was expected)")
    except (OSError, ValueError) as e:
        skipped.append(f"{path.name}: unreadable run manifest ({e.__class__.__name__})")
    return {}


def _read_lines(path: Path, required, what, skipped) -> list:
    """The JSON lines of `path` that are objects with numeric `required` fields; the rest reported."""
    if not path.exists():
        return []
    try:
        data = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        skipped.append(f"{path.name}: unreadable ({e.strerror or e})")
        return []
    lines, out = data.split("\n"), []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = number == len(lines)  # the last line has no newline: cut short, or still being written
        try:
            item = json.loads(line)
        except ValueError:
            skipped.append(f"{path.name} line {number}: " + ("cut short (the run was stopped while writing it, "
                                                             "or is still writing)" if torn else "not JSON"))
            continue
        bad = [k for k in required if not isinstance(item, dict) or not _is_number(item.get(k))]
        if bad:
            skipped.append(f"{path.name} line {number}: not {'an' if what[0] in 'aeiou' else 'a'} {what} line "
                           f"(missing or non-numeric {', '.join(bad)})")
            continue
        out.append(item)
    return out


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_time(text):
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


def parse_date(text, flag, end=False):
    """--from / --to: a date (the whole day) or a date and time, local time unless an offset is given."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text}: not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    if end and len(text) <= 10:  # a date alone: up to the end of that day
        moment += timedelta(days=1) - timedelta(microseconds=1)
    return moment if moment.tzinfo else moment.astimezone()


def within(run: Run, since, until) -> Run | None:
    """The part of `run` between `since` and `until` (wall clock), or None when nothing of it falls there."""
    if since is None and until is None:
        return run

    def inside(moment):
        return moment is not None and (since is None or moment >= since) and (until is None or moment <= until)

    part = Run(run.base, run.manifest, [e for e in run.events if inside(e["wall"])],
               [t for t in run.timeline if inside(t["wall"])], run.start)
    return part if part.events or part.timeline else None
