"""The compliance report: runs -> one self-contained HTML file (inline SVG plots, base64 thumbnails, no script,
nothing fetched), one section per camera / source."""
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jinja2

from ..atomic import write_text
from ..errors import UserError
from ..timeline import iso, now
from . import plots
from .runs import find_runs, load_run, parse_date, within
from .thumbs import frames_at, image_file_uri

MAX_ALERT_ROWS = 200  # per section, the latest; a month of a busy entrance would make the file heavy
DEFAULT_THRESHOLD = 0.75
TEMPLATE = "report.html.j2"
EARLIEST = datetime.min.replace(tzinfo=timezone.utc)  # sorts runs without a wall-clock time first


@dataclass
class Section:
    camera: str
    runs: list
    sources: list = field(default_factory=list)
    tiles: list = field(default_factory=list)
    ratio_svg: str | None = None
    people_svg: str | None = None
    people_title: str = ""
    notes: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    alerts_total: int = 0
    run_rows: list = field(default_factory=list)


def build_report(paths, since=None, until=None, camera=None, output_dir=".") -> tuple:
    """(html, facts): facts = {"sections", "alerts", "skipped"} for the caller's summary."""
    skipped = []
    since_t, until_t = parse_date(since, "--from"), parse_date(until, "--to", end=True)
    if since_t and until_t and since_t > until_t:
        raise UserError(f"--from {since} is after --to {until}")
    bases = find_runs(paths)
    if not bases:
        skipped.append(f"no run found in {', '.join(map(str, paths))} (a run is <name>.mp4 with its "
                       f".events.jsonl, .timeline.jsonl or .run.json)")
    runs = []
    for base in bases:
        notes = []  # said only for the runs the report is about
        run = load_run(base, notes)
        if camera and camera not in (run.camera, run.manifest.get("source")):
            continue
        if (since_t or until_t) and run.start is None and not run.empty:
            skipped.append(f"{run.name}: no wall-clock times (a run from before timelines): left out of the "
                           f"date range")
            continue
        part = None if run.empty else within(run, since_t, until_t)
        if part is not None or run.empty:
            skipped += notes
        if part is not None:
            runs.append(part)
    by_camera = {}
    for run in runs:
        by_camera.setdefault(run.camera, []).append(run)
    sections = [_section(name, group, skipped, Path(output_dir)) for name, group in sorted(by_camera.items())]
    html = _render(sections, skipped, since_t, until_t, camera, runs)
    return html, {"sections": len(sections), "alerts": sum(s.alerts_total for s in sections), "skipped": skipped}


def write_report(paths, output, since=None, until=None, camera=None) -> dict:
    """Build the report and write it to `output` atomically (a browser reloading it sees the old or the new)."""
    output = Path(output)
    html, facts = build_report(paths, since, until, camera, output_dir=output.parent)
    write_text(output, html)
    return facts


# ------------------------------------------------------------------------------------------------ sections

def _section(camera, runs, skipped, output_dir) -> Section:
    runs.sort(key=lambda r: (r.start or EARLIEST, r.name))
    section = Section(camera, runs, sources=sorted({r.manifest.get("source") or r.name for r in runs}))
    wall_axis = len(runs) > 1 or any(r.live for r in runs)
    threshold = next((r.manifest["settings"]["alert_threshold"] for r in runs
                      if isinstance(r.manifest.get("settings"), dict)
                      and isinstance(r.manifest["settings"].get("alert_threshold"), (int, float))), DEFAULT_THRESHOLD)
    events = [(run, e) for run in runs for e in run.events]
    events.sort(key=lambda pair: (pair[1]["wall"] or EARLIEST, pair[1]["time_s"]) if wall_axis
                else pair[1]["time_s"])
    numbered = [(i + 1, run, e) for i, (run, e) in enumerate(events)]
    series = [(_x(t, wall_axis), t["faces"] * t.get("frames", 1), t["protected"] * t.get("frames", 1))
              for run in runs for t in run.timeline if _x(t, wall_axis) is not None]
    series.sort(key=lambda s: s[0])
    marks = [(_x(e, wall_axis), _face_share(e), n) for n, _, e in numbered if _x(e, wall_axis) is not None]
    xs = [x for x, _, _ in series] + [x for x, _, _ in marks]
    xlim = _span(xs, runs, wall_axis, pad=not series)
    if series or marks:
        section.ratio_svg = plots.ratio_plot(series, marks, threshold, wall_axis, xlim)
    if not series:
        section.notes.append("No timeline for this source (a run from before timelines, or one that processed "
                             "no frame): the plot shows the alerts only." if marks else
                             "Nothing to plot: no timeline and no alert.")
    section.people_svg, section.people_title = _people_plot(runs, wall_axis, xlim)
    section.tiles = _tiles(runs, series, len(events))
    section.alerts_total = len(numbered)
    section.alerts = _alert_rows(numbered[-MAX_ALERT_ROWS:], skipped, output_dir)
    section.run_rows = [_run_row(r) for r in runs]
    return section


def _face_share(event):
    """Protected faces / faces at the alert (an alert line's own `ratio` is of people with the person rule)."""
    return event["protected"] / event["faces"] if event["faces"] else 0.0


def _x(item, wall_axis):
    return item.get("wall") if wall_axis else item["time_s"]


def _span(xs, runs, wall_axis, pad=False):
    """The plots' time span: a file run from 0 to its end, else the data's first to last moment; `pad`: room
    after the last alert when nothing says where the run ended."""
    if not xs:
        return None
    if wall_axis:
        low, high = min(xs), max(xs)
        return low, high + (high - low) * 0.04 if pad else high
    high = max(max(xs), max(r.duration_s for r in runs))
    return 0, high * 1.04 if pad else high


def _people_plot(runs, wall_axis, xlim):
    """People seen per bin (from tracking's people_seen), else the most faces in view per bin."""
    lines = [(run, t) for run in runs for t in run.timeline if _x(t, wall_axis) is not None]
    if not lines:
        return None, ""
    with_people = any(t.get("people_seen") is not None for _, t in lines)
    xs = [_x(t, wall_axis) for _, t in lines]
    width, unit = plots.bin_width((xlim[1] - xlim[0]) if xlim else max(xs) - min(xs))
    counts = {}
    previous = {}
    for run, t in lines:
        key = _bin(_x(t, wall_axis), width, wall_axis)
        if with_people:
            seen = t.get("people_seen")
            if seen is not None:
                counts[key] = counts.get(key, 0) + max(0, seen - previous.get(run.name, 0))
                previous[run.name] = seen
        else:
            counts[key] = max(counts.get(key, 0), round(t["faces"]))
    bins = sorted(counts.items())
    if wall_axis:
        zone = xs[0].tzinfo
        bins = [(datetime.fromtimestamp(start, zone), count) for start, count in bins]
    bar = timedelta(seconds=width) / timedelta(days=1) if wall_axis else width
    if with_people:
        title = f"People seen per {unit}"
        return plots.count_plot(bins, title, "people", wall_axis, bar, xlim), title
    title = f"Most faces in view per {unit} (people counts need tracking)"
    return plots.count_plot(bins, title, "faces", wall_axis, bar, xlim), title


def _bin(x, width, wall_axis):
    """The bin's start: seconds of video, or a POSIX time (made a datetime once per bin, by the caller)."""
    return math.floor((x.timestamp() if wall_axis else x) / width) * width


def _tiles(runs, series, alerts):
    faces = sum(f for _, f, _ in series)
    protected = sum(p for _, _, p in series)
    if not series:  # older runs: the manifest's totals
        faces = sum(r.manifest.get("faces") or 0 for r in runs)
        protected = sum(r.manifest.get("protected") or 0 for r in runs)
    share = protected / faces if faces else None
    seconds = sum(r.duration_s for r in runs)
    people = [max((t.get("people_seen") or 0 for t in r.timeline), default=0) for r in runs]
    tiles = [{"label": "faces with a mask", "value": f"{share:.0%}" if share is not None else "–",
              "tone": "good" if share is not None and share >= 0.75 else "bad" if share is not None else ""},
             {"label": "alerts", "value": str(alerts), "tone": "bad" if alerts else "good"},
             {"label": "watched", "value": _duration(seconds), "tone": ""}]
    if any(people):
        tiles.append({"label": "people seen", "value": str(sum(people)), "tone": ""})
    else:
        frames = sum(t.get("frames", 1) for r in runs for t in r.timeline)
        tiles.append({"label": "faces per frame", "value": f"{faces / frames:.1f}" if frames else "–", "tone": ""})
    return tiles


def _duration(seconds):
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


# ------------------------------------------------------------------------------------------------ alerts

def _alert_rows(numbered, skipped, output_dir):
    from_video = {}
    for _, run, e in numbered:
        # a run still recording has no file yet: the one there is an earlier run's
        if "snapshots" not in e and run.base.is_file() and run.manifest.get("state") != "running":
            from_video.setdefault(run.base, []).append(e["time_s"])
    frames = {base: frames_at(base, times) for base, times in from_video.items()}
    rows = []
    for number, run, e in numbered:
        thumbs, missing = _thumbs(number, run, e, frames.get(run.base, {}), skipped)
        people = (f"{e['people_protected']}/{e['people']} masked" if _num(e.get("people"))
                  and _num(e.get("people_protected")) else None)
        rows.append({"number": number, "run": run.name, "clock": plots.clock(e["time_s"], tenths=True),
                     "time_s": f"{e['time_s']:.1f}", "wall": e["wall"].strftime("%Y-%m-%d %H:%M:%S")
                     if e["wall"] else None, "faces": e["faces"], "protected": e["protected"],
                     "ratio": f"{_face_share(e):.0%}", "rule": e.get("rule"), "people": people,
                     "tracks": ", ".join(map(str, e["track_ids"])) if isinstance(e.get("track_ids"), list) else None,
                     "thumbs": thumbs, "missing": missing, "clip": _clip(number, run, e, skipped, output_dir)})
    return rows


def _num(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _thumbs(number, run, e, video_frames, skipped):
    """[{uri, caption}] for an alert, and how many of its snapshots are missing."""
    if "snapshots" not in e:
        uri = video_frames.get(e["time_s"])
        return ([{"uri": uri, "caption": "frame from the recording"}] if uri else []), 0
    thumbs, missing = [], 0
    for rel in e["snapshots"] if isinstance(e["snapshots"], list) else []:
        path = _inside(run.base.parent, rel)
        uri = image_file_uri(path) if path is not None and path.is_file() else None
        if uri is None:
            missing += 1
            why = "outside the run's folder" if path is None else "missing" if not path.is_file() else "unreadable"
            skipped.append(f"{run.name} alert #{number}: snapshot {rel} {why}")
            continue
        thumbs.append({"uri": uri, "caption": "face" if "-face" in Path(str(rel)).stem else "frame"})
    return thumbs, missing


def _inside(folder: Path, rel):
    """folder / rel when it stays inside `folder` (paths in event lines are never trusted), else None."""
    if not isinstance(rel, str) or not rel:
        return None
    path = (folder / rel).resolve()
    try:
        path.relative_to(folder.resolve())
    except ValueError:
        return None
    return path


def _clip(number, run, e, skipped, output_dir):
    if "clip" not in e:
        return None
    path = _inside(run.base.parent, e["clip"])
    if path is None or not path.is_file():
        skipped.append(f"{run.name} alert #{number}: clip {e['clip']} missing")
        return None
    return os.path.relpath(path, Path(output_dir).resolve())


# ------------------------------------------------------------------------------------------------ runs

def _run_row(run):
    m = run.manifest
    models = m.get("models") if isinstance(m.get("models"), dict) else {}
    return {"name": run.name, "source": m.get("source") or "–",
            "started": run.start.strftime("%Y-%m-%d %H:%M:%S") if run.start else "–",
            "duration": _duration(run.duration_s), "frames": m.get("frames", "–"),
            "state": m.get("state", "no manifest"), "blur": (m.get("settings") or {}).get("blur_faces", "–"),
            "detector": _model(models.get("detector")), "mtcnn": _model(models.get("mtcnn"))}


def _model(doc):
    if not isinstance(doc, dict):
        return "–"
    version, path = doc.get("version") or "?", doc.get("path")
    return f"{version} ({Path(path).name})" if path else version


# ------------------------------------------------------------------------------------------------ page

def _render(sections, skipped, since, until, camera, runs):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    starts = [r.start for r in runs if r.start]
    ends = [r.start + timedelta(seconds=r.duration_s) for r in runs if r.start]
    period = (f"{(since or min(starts)).strftime('%Y-%m-%d %H:%M')} – {(until or max(ends)).strftime('%Y-%m-%d %H:%M')}"
              if (since or starts) and (until or ends) else "period unknown")
    return env.get_template(TEMPLATE).render(
        generated=iso(now()).replace("T", " "), period=period, camera=camera, sections=sections,
        skipped=skipped, runs=len(runs), alerts=sum(s.alerts_total for s in sections))
