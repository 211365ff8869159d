"""Face-centre labels of footage (benchmarks/data/footage_faces/*.json) and how a detector (and a
classifier) does on them: frames where the labeled face is found, other boxes per frame, and the share
of found faces called protected.

Format: {"clip": "footage/channy_in.gif", "frames": {"0": [{"x": cx, "y": cy, "size": s, "id": 1,
"mask": true}], "1": [], ...}}: every frame index (or, with "sampled_every": N, every N-th), centre and
approximate width in source pixels; "mask": null is a head whose face is turned away.
A detection finds a labeled face when its centre lies within 0.6 x size of the face's centre and its
width is 0.4-3 x size (boxes drawn by MTCNN around a 15-25 px face vary that much).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError

CENTRE_TOLERANCE, MIN_WIDTH_RATIO, MAX_WIDTH_RATIO = 0.6, 0.4, 3.0


@dataclass
class FootageLabels:
    clip: str
    faces: dict  # frame index -> list of dicts x, y, size, id, mask (the labeled frames only)

    @property
    def frames(self):
        return sorted(self.faces)


def load_footage_labels(path) -> FootageLabels:
    try:
        data = json.loads(Path(path).read_text())
        frames = data["frames"]
        every = int(data.get("sampled_every", 1))
        faces = {i: frames[str(i)] for i in range(0, every * len(frames), every)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a footage face-centre label file ({exc})") from None
    return FootageLabels(data["clip"], faces)


def read_clip(path):
    """Every frame of a GIF or video as HxWx3 uint8 RGB."""
    from PIL import Image, ImageSequence

    if Path(path).suffix.lower() == ".gif":
        with Image.open(path) as gif:
            return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    raise UserError(f"{path}: only GIF clips are read here")


def matches(boxes, face):
    """Which boxes (N,4) find this labeled face."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    width = boxes[:, 2] - boxes[:, 0]
    near = np.hypot(cx - face["x"], cy - face["y"]) <= CENTRE_TOLERANCE * face["size"]
    return near & (width >= MIN_WIDTH_RATIO * face["size"]) & (width <= MAX_WIDTH_RATIO * face["size"])


@dataclass
class FootageScore:
    found: int            # labeled faces found
    labeled: int          # labeled faces
    other_per_frame: float
    protected_found: int  # found faces the classifier called protected
    correct_class: int    # found faces whose class matches the label
    found_frames: list    # frame indices where every labeled face was found

    @property
    def class_accuracy(self):
        return self.correct_class / self.found if self.found else float("nan")


def score_footage(labels: FootageLabels, detections, protected=None, frames=None) -> FootageScore:
    """detections: per frame boxes (N,4); protected: per frame (N,) bools of the classifier, or None.
    frames: the frame indices to score (default every labeled one)."""
    frames = labels.frames if frames is None else frames
    found = labeled = other = prot = correct = 0
    found_frames = []
    for i in frames:
        boxes = np.asarray(detections[i], np.float64).reshape(-1, 4)
        used = np.zeros(len(boxes), bool)
        all_found = True
        for face in labels.faces[i]:
            labeled += 1
            hit = np.flatnonzero(matches(boxes, face) & ~used)
            if len(hit) == 0:
                all_found = False
                continue
            used[hit[0]] = True
            found += 1
            if protected is not None:
                is_prot = bool(protected[i][hit[0]])
                prot += is_prot
                correct += is_prot == bool(face["mask"])
        if labels.faces[i] and all_found:
            found_frames.append(i)
        other += int((~used).sum())
    return FootageScore(found, labeled, other / max(len(frames), 1), prot, correct, found_frames)
