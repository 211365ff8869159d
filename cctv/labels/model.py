"""The one in-memory form of labels, whatever tool wrote them, and the report of a load."""
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .classes import IGNORE, map_class
from .safepath import UnsafePath


@dataclass
class LabeledImage:
    image_path: Path
    width: int
    height: int
    boxes: np.ndarray  # float32 (N,4) x1,y1,x2,y2 in pixels, inside the image
    classes: list  # N of 'protected' | 'unprotected'
    key: str  # the image's name in its dataset (Suite: '<dataset>/<data_key>')
    label_path: Path = None  # the file the boxes came from


@dataclass
class LoadReport:
    source: str = ""
    format: str = ""
    read: int = 0
    boxes: int = 0
    clipped: int = 0  # boxes that reached outside the image, clipped to it
    dropped: int = 0  # boxes with no area left inside the image
    ignored: Counter = field(default_factory=Counter)  # objects not used, by why (class mapped to ignore, polygon...)
    skipped: dict = field(default_factory=lambda: defaultdict(list))  # reason -> [file, ...]

    def skip(self, reason, path):
        self.skipped[reason].append(str(path))

    @property
    def skipped_count(self) -> int:
        return sum(len(files) for files in self.skipped.values())

    def __str__(self):
        text = f"{self.source}: read {self.read} labels ({self.boxes} boxes) as {self.format}"
        if self.skipped:
            reasons = ", ".join(f"{len(files)} {reason}" for reason, files in self.skipped.items())
            text += f"; skipped {self.skipped_count} ({reasons})"
        if self.clipped or self.dropped:
            text += f"; {self.clipped} boxes clipped to the image, {self.dropped} outside it dropped"
        if self.ignored:
            text += "; ignored " + ", ".join(f"{n} {why}" for why, n in self.ignored.items())
        return text

    def details(self, per_reason=5) -> str:
        """The summary line, then a few of the skipped files for each reason."""
        lines = [str(self)]
        for reason, files in self.skipped.items():
            more = f" (and {len(files) - per_reason} more)" if len(files) > per_reason else ""
            lines.append(f"  {reason}: " + ", ".join(files[:per_reason]) + more)
        return "\n".join(lines)


class LabelSet:
    """The labels read by `load_labels`: `items` (LabeledImage) and `report`. When read from a .zip, the
    extracted files live as long as this object (or until `close()`)."""

    def __init__(self, items, report, keepalive=None):
        self.items = items
        self.report = report
        self._keepalive = keepalive

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def close(self):
        if self._keepalive is not None:
            self._keepalive.cleanup()
            self._keepalive = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BadLabel(ValueError):
    """One label file can't be used; the load skips it under this reason."""

    def __init__(self, reason, detail=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail

    def where(self, path) -> str:
        """How the load report lists the file: its path, and the detail when there is one."""
        return f"{path} ({self.detail})" if self.detail else str(path)


def make_item(image_path, width, height, raw_boxes, class_names, key, label_path, table, report):
    """A LabeledImage from pixel boxes (x1,y1,x2,y2) and tool class names: classes mapped (an unknown
    one is a UserError naming `label_path`), boxes clipped to the image (counted in `report`)."""
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise BadLabel("no image size", f"{width}x{height}")
    boxes, classes = [], []
    for box, name in zip(raw_boxes, class_names):
        target = map_class(name, table, label_path)
        if target == IGNORE:
            report.ignored[f"'{name}' boxes"] += 1
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        if not np.isfinite([x1, y1, x2, y2]).all():
            raise BadLabel("malformed box", f"{box}")
        if x2 < x1 or y2 < y1:  # a negative width or height: a broken label, not a box to guess at
            raise BadLabel("malformed box", f"{[round(v, 2) for v in (x1, y1, x2, y2)]} has a negative size")
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
        if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
            report.dropped += 1
            continue
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
            report.clipped += 1
        boxes.append((cx1, cy1, cx2, cy2))
        classes.append(target)
    report.read += 1
    report.boxes += len(boxes)
    return LabeledImage(Path(image_path), width, height, np.asarray(boxes, np.float32).reshape(-1, 4),
                        classes, key, Path(label_path) if label_path else None)


@contextmanager
def skipping(report, where, malformed_reason, malformed=(KeyError, TypeError, ValueError, AttributeError)):
    """Run the reading of one label; a problem with it is counted in `report` under its reason (naming
    `where`) and the load goes on. UserError (e.g. an unknown class) still stops the load."""
    try:
        yield
    except UnsafePath as e:
        report.skip("path escaping the export folder", f"{where} ({e})")
    except BadLabel as e:
        report.skip(e.reason, e.where(where))
    except malformed as e:
        report.skip(malformed_reason, f"{where} ({e.__class__.__name__}: {e})")
