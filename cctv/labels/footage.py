"""Footage -> JPEG frames for labeling in Superb AI Suite (`footages_to_frames.py`): every N-th frame of
every video in a folder, named `<footage>-frame<N>.jpg` with N the frame's index in its footage, and
optionally a pre-label `<frame>.jpg.json` beside each (see suite.py for the form spb uploads)."""
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from ..atomic import write_bytes
from ..errors import UserError
from ..video import VIDEO_SUFFIXES, open_source
from .suite import write_suite_label


@dataclass
class FootageResult:
    name: str
    note: str = ""  # why a file was skipped
    decoded: int = 0
    written: int = 0
    existing: int = 0
    prelabeled: int = 0
    faces: Counter = field(default_factory=Counter)


def list_footage(footage_dir):
    """(videos, skipped) in a folder: video files sorted by name, and (file, note) for everything else."""
    folder = Path(footage_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such footage folder")
    videos, skipped = [], []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            continue
        if path.name.startswith(".") or path.suffix.lower() not in VIDEO_SUFFIXES:
            skipped.append((path, "not a video file"))
        else:
            videos.append(path)
    return videos, skipped


def frame_names(videos):
    """Output name stem per footage: its file stem, or stem_ext when two footages share a stem."""
    stems = Counter(p.stem for p in videos)
    return {p: p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix[1:].lower()}" for p in videos}


def extract_frames(footage_dir, output_dir, frames_per_extract, prelabeler=None, label_interface=None,
                   jpeg_quality=95):
    """Write every `frames_per_extract`-th frame of every footage in `footage_dir` to `output_dir`.
    Frames already there are kept (a re-run adds nothing twice); with a `prelabeler`, frames without a
    label file get one. Returns a FootageResult per file, skipped ones included."""
    if int(frames_per_extract) < 1:
        raise UserError(f"--frames_per_extract must be 1 or more, got {frames_per_extract}")
    videos, skipped = list_footage(footage_dir)
    if not videos:
        raise UserError(f"{footage_dir}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results = [FootageResult(p.name, note=note) for p, note in skipped]
    for path, stem in frame_names(videos).items():
        results.append(_extract_one(path, stem, output_dir, int(frames_per_extract), prelabeler,
                                    label_interface, jpeg_quality))
    return results


def _extract_one(path, stem, output_dir, every, prelabeler, label_interface, jpeg_quality):
    result = FootageResult(path.name)
    try:
        source = open_source(path)
    except UserError as e:  # one broken file doesn't stop the batch
        result.note = str(e).removeprefix(f"{path}: ")
        return result
    try:
        bar = tqdm(source, total=source.info.frames, desc=path.name, unit="frame", leave=False)
        for index, frame in enumerate(bar):
            result.decoded += 1
            if index % every:
                continue
            jpg = output_dir / f"{stem}-frame{index}.jpg"
            if jpg.is_file() and jpg.stat().st_size > 0:
                result.existing += 1
            else:
                ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                        [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                if not ok:
                    raise UserError(f"{jpg}: could not encode the frame as JPEG")
                write_bytes(jpg, data.tobytes())
                result.written += 1
            label_path = jpg.with_name(jpg.name + ".json")
            if prelabeler is not None and not label_path.is_file():
                boxes, classes = prelabeler.label(frame)
                height, width = frame.shape[:2]
                write_suite_label(label_path, boxes, classes, width, height, label_interface)
                result.prelabeled += 1
                result.faces.update(classes)
    finally:
        source.close()
    return result


def summary_table(results, prelabels=False) -> str:
    header = ["footage", "frames", "written", "already there"] + (["pre-labeled", "protected", "unprotected"]
                                                                  if prelabels else []) + ["note"]
    rows = []
    for r in results:
        row = [r.decoded, r.written, r.existing]
        if prelabels:
            row += [r.prelabeled, r.faces["protected"], r.faces["unprotected"]]
        rows.append([r.name] + ["-" if r.note else str(v) for v in row] + [r.note])
    used = [r for r in results if not r.note]
    total = ["total", sum(r.decoded for r in used), sum(r.written for r in used), sum(r.existing for r in used)]
    if prelabels:
        total += [sum(r.prelabeled for r in used), sum(r.faces["protected"] for r in used),
                  sum(r.faces["unprotected"] for r in used)]
    rows.append(total + [f"{len(results) - len(used)} file(s) skipped" if len(used) < len(results) else ""])
    from ..tables import format_table

    return format_table(header, rows, align="l" + "r" * (len(header) - 2) + "l", rule=True)
