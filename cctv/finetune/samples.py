"""MTCNN's training samples mined from labeled frames, per stage (PNet 12 px, RNet 24 px, ONet 48 px).

A sample is a square window of a frame, cropped and resized exactly as the cascade does, labeled by its
best IoU with the frame's labeled faces: positive (>= 0.65), part face (0.4-0.65, trains box regression
only), negative (< 0.3); 0.3-0.4 is ambiguous and not used. Windows come from random jitter around each
face and random negatives (MTCNN's recipe), plus the current cascade's own candidates for the stage: its
false detections are the hard negatives, its near misses the positives and parts it must learn to keep.
"""
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from mtcnn.cascade import clip_to_frame

from ..detection_eval import box_iou

STAGE_SIZE = {"pnet": 12, "rnet": 24, "onet": 48}
# The cascade's box regression is relative to the box size; RNet/ONet count pixels inclusively (w + 1).
STAGE_SIZE_PLUS_ONE = {"pnet": 0.0, "rnet": 1.0, "onet": 1.0}
# Which detect_stages() candidates a stage sees: RNet gets PNet's output, ONet gets RNet's.
STAGE_INPUT = {"pnet": "pnet", "rnet": "pnet", "onet": "rnet"}

POSITIVE, NEGATIVE, PART, AMBIGUOUS = 1, 0, -1, -2
POS_IOU, PART_IOU, NEG_IOU = 0.65, 0.4, 0.3


@dataclass
class SamplingConfig:
    """How many windows of each kind to keep per labeled face / per frame."""
    positives_per_face: int = 3
    parts_per_face: int = 2
    jitter_tries_per_face: int = 24
    random_negatives: int = 10
    near_face_negatives: int = 2        # per face: windows beside a face (hard for a face detector)
    cascade_negatives: int = 12         # the cascade's own false candidates, most confident first
    cascade_matches_per_face: int = 2   # the cascade's positive/part candidates kept per face
    min_train_face: float = 12.0        # smaller labeled faces give no positives (they stay non-negatives)
    max_class_weight: float = 4.0       # a rarer class's faces give up to this many times more positives/parts


@dataclass
class SampleSet:
    """Crops (N,S,S,3) uint8 RGB, label (N,) POSITIVE/NEGATIVE/PART, box-regression target (N,4),
    frame (N,) index of the source frame, landmarks (N,10) distillation targets (ONet only, else None)."""
    size: int
    crops: np.ndarray
    label: np.ndarray
    target: np.ndarray
    frame: np.ndarray
    landmarks: np.ndarray = None
    counts: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.label)

    def select(self, idx):
        lm = None if self.landmarks is None else self.landmarks[idx]
        return SampleSet(self.size, self.crops[idx], self.label[idx], self.target[idx], self.frame[idx], lm)


def regression_target(windows, faces, plus_one):
    """Offsets that move each window onto its face, relative to the window size: the inverse of the
    cascade's `box + reg * size`."""
    size = (windows[:, 2:4] - windows[:, 0:2] + plus_one)
    size = np.concatenate([size, size], axis=1)
    return ((faces - windows) / size).astype(np.float32)


def label_windows(windows, faces, plus_one):
    """(label, regression target) of windows against a frame's faces by best IoU; windows with
    0.3 <= IoU < 0.4 are AMBIGUOUS (the callers keep only the other labels)."""
    if len(faces) == 0:
        return np.full(len(windows), NEGATIVE, np.int8), np.zeros((len(windows), 4), np.float32)
    iou = box_iou(windows, faces)
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(len(windows)), best]
    label = np.full(len(windows), AMBIGUOUS, np.int8)
    label[best_iou >= POS_IOU] = POSITIVE
    label[(best_iou >= PART_IOU) & (best_iou < POS_IOU)] = PART
    label[best_iou < NEG_IOU] = NEGATIVE
    target = regression_target(windows, faces[best], plus_one)
    target[label == NEGATIVE] = 0.0
    return label, target


def jitter_windows(rng, faces, tries, min_face):
    """MTCNN's positive/part windows: squares of side 0.8*min .. 1.25*max of a face, centre moved by up to
    20% of its size. tries: per face (F,) or one number. Returns (windows, index of the face each came from)."""
    tries = np.broadcast_to(np.asarray(tries, int), (len(faces),))
    usable = np.flatnonzero(np.minimum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]) >= min_face)
    face_index = np.repeat(usable, tries[usable])
    if len(face_index) == 0:
        return np.zeros((0, 4)), face_index
    f = faces[face_index]
    w, h = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
    cx = (f[:, 0] + f[:, 2]) / 2 + rng.uniform(-0.2, 0.2, w.shape) * w
    cy = (f[:, 1] + f[:, 3]) / 2 + rng.uniform(-0.2, 0.2, h.shape) * h
    side = rng.uniform(0.8, 1.0, w.shape) * np.minimum(w, h)
    side = side + rng.uniform(0, 1, w.shape) * (1.25 * np.maximum(w, h) - side)
    windows = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return windows, face_index


def random_windows(rng, width, height, count, min_side=12.0):
    """Random squares inside the frame, side between 12 px and half the frame's short side."""
    max_side = max(min_side + 1, min(width, height) / 2)
    side = rng.uniform(min_side, max_side, count)
    x = rng.uniform(0, 1, count) * np.maximum(width - side, 0)
    y = rng.uniform(0, 1, count) * np.maximum(height - side, 0)
    return np.stack([x, y, x + side, y + side], axis=1)


def near_face_windows(rng, faces, per_face, min_side=12.0):
    """Squares of about a face's size shifted by roughly their own size: background right beside faces."""
    if len(faces) == 0 or per_face == 0:
        return np.zeros((0, 4))
    f = np.repeat(faces, per_face, axis=0)
    side = np.maximum(min_side, np.maximum(f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]) * rng.uniform(0.7, 1.3, len(f)))
    angle = rng.uniform(0, 2 * np.pi, len(f))
    cx = (f[:, 0] + f[:, 2]) / 2 + np.cos(angle) * side * rng.uniform(0.8, 1.5, len(f))
    cy = (f[:, 1] + f[:, 3]) / 2 + np.sin(angle) * side * rng.uniform(0.8, 1.5, len(f))
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _inside(windows, width, height):
    return (windows[:, 0] >= 0) & (windows[:, 1] >= 0) & (windows[:, 2] <= width) & (windows[:, 3] <= height)


def _first_per_face(rng, face_index, keep, quota):
    """Indices of up to quota[face] kept windows per face, in random order."""
    chosen = []
    for f in np.unique(face_index[keep]):
        idx = np.flatnonzero(keep & (face_index == f))
        chosen.extend(rng.permutation(idx)[:quota[f]])
    return np.asarray(chosen, dtype=int)


def class_weights(classes, cfg: SamplingConfig) -> dict:
    """Per class, how many times more positives/parts each face gives so classes weigh alike in training
    (the labeled sets are mostly masked faces, and a detector that misses bare faces misses alerts)."""
    names, counts = np.unique(np.asarray(list(classes), dtype=object), return_counts=True)
    if len(names) == 0:
        return {}
    return {str(n): float(min(cfg.max_class_weight, counts.max() / c)) for n, c in zip(names, counts)}


def _face_windows(rng, frame_shape, faces, weight, plus_one, cfg):
    """Jittered windows around the faces: up to the quota of positives and of part faces per face."""
    height, width = frame_shape[:2]
    tries = np.ceil(cfg.jitter_tries_per_face * weight).astype(int)
    windows, face_index = jitter_windows(rng, faces, tries, cfg.min_train_face)
    if len(windows) == 0:
        return windows, np.zeros(0, np.int8), np.zeros((0, 4), np.float32)
    inside = _inside(windows, width, height)
    label, target = label_windows(windows, faces, plus_one)
    pos = _first_per_face(rng, face_index, inside & (label == POSITIVE),
                          np.rint(cfg.positives_per_face * weight).astype(int))
    part = _first_per_face(rng, face_index, inside & (label == PART), np.rint(cfg.parts_per_face * weight).astype(int))
    idx = np.concatenate([pos, part]).astype(int)
    return windows[idx], label[idx], target[idx]


def _negative_windows(rng, frame_shape, faces, plus_one, cfg):
    """Random background windows and windows right beside the faces, none overlapping a face (IoU < 0.3)."""
    height, width = frame_shape[:2]
    windows = np.concatenate([random_windows(rng, width, height, cfg.random_negatives * 2),
                              near_face_windows(rng, faces, cfg.near_face_negatives)])
    windows = windows[_inside(windows, width, height)]
    label, _ = label_windows(windows, faces, plus_one)
    windows = windows[label == NEGATIVE][:cfg.random_negatives + cfg.near_face_negatives * len(faces)]
    return windows, np.full(len(windows), NEGATIVE, np.int8), np.zeros((len(windows), 4), np.float32)


def _cascade_windows(candidates, faces, plus_one, cfg):
    """The cascade's own candidates: its most confident false ones (hard negatives) and its hits."""
    if candidates is None or len(candidates) == 0:
        return np.zeros((0, 4)), np.zeros(0, np.int8), np.zeros((0, 4), np.float32)
    boxes, scores = candidates[:, :4].astype(np.float64), candidates[:, 4]
    label, target = label_windows(boxes, faces, plus_one)
    order = np.argsort(-scores, kind="stable")
    hard = [i for i in order if label[i] == NEGATIVE][:cfg.cascade_negatives]
    hits = [i for i in order if label[i] in (POSITIVE, PART)][:cfg.cascade_matches_per_face * max(len(faces), 1)]
    idx = np.asarray(hard + hits, dtype=int)
    return boxes[idx], label[idx], target[idx]


def frame_windows(rng, frame_shape, faces, candidates, stage, cfg: SamplingConfig, face_weight=None):
    """All windows of one frame for a stage: (windows (N,4), labels (N,), regression targets (N,4)).
    faces: (F,4) labeled boxes; candidates: (C,5) the cascade's input to this stage (boxes + score);
    face_weight: (F,) multiplier of each face's positive/part quota (class balance), default 1."""
    weight = np.ones(len(faces)) if face_weight is None else np.asarray(face_weight, np.float64)
    plus_one = STAGE_SIZE_PLUS_ONE[stage]
    parts = [_face_windows(rng, frame_shape, faces, weight, plus_one, cfg),
             _negative_windows(rng, frame_shape, faces, plus_one, cfg),
             _cascade_windows(candidates, faces, plus_one, cfg)]
    return (np.concatenate([p[0] for p in parts]).reshape(-1, 4), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]).reshape(-1, 4))


def _area_bins(length, size):
    """torch's area-interpolation bins (adaptive average pooling): [floor(i*L/S), ceil((i+1)*L/S))."""
    i = np.arange(size)
    return (i * length) // size, -((-(i + 1) * length) // size)


def area_resize(crop, size):
    """An HxWx3 crop resized to size x size exactly as F.interpolate(mode='area') does (the cascade's
    resize), in numpy through an integral image: float64 (size,size,3)."""
    h, w = crop.shape[:2]
    integral = np.zeros((h + 1, w + 1, crop.shape[2]))
    integral[1:, 1:] = crop.astype(np.float64).cumsum(0).cumsum(1)
    r0, r1 = _area_bins(h, size)
    c0, c1 = _area_bins(w, size)
    total = integral[r1][:, c1] - integral[r0][:, c1] - integral[r1][:, c0] + integral[r0][:, c0]
    return total / ((r1 - r0)[:, None, None] * (c1 - c0)[None, :, None])


def crop_windows(frame, windows, size):
    """Windows of an HxWx3 uint8 frame as the cascade feeds them to a stage: the same pixel rectangle
    (clipped to the frame), area-resized to size x size with the same bins. Returns uint8 (N,size,size,3)."""
    out = np.zeros((len(windows), size, size, 3), np.uint8)
    if len(windows) == 0:
        return out
    x1, y1, x2, y2 = (v.tolist() for v in clip_to_frame(torch.as_tensor(windows, dtype=torch.float32),
                                                          frame.shape[1], frame.shape[0]))
    for i, (left, top, right, bottom) in enumerate(zip(x1, y1, x2, y2)):
        crop = frame[top:max(bottom, top + 1), left:max(right, left + 1)]
        out[i] = np.clip(np.rint(area_resize(crop, size)), 0, 255).astype(np.uint8)
    return out


def _valid(windows, frame_shape):
    """Windows that overlap the frame by at least a pixel (the cascade drops the others)."""
    height, width = frame_shape[:2]
    return ((np.minimum(windows[:, 2], width) - np.maximum(windows[:, 0], 0) >= 1)
            & (np.minimum(windows[:, 3], height) - np.maximum(windows[:, 1], 0) >= 1))


def mine_stage_samples(frames, stage, detector=None, cfg=None, seed=0, progress=True, weights=None, total=None):
    """Samples for `stage` from labeled frames. frames: iterable of (image HxWx3 uint8, faces (F,4),
    classes [F]); detector: an MTCNN whose detect_stages() supplies the cascade's candidates (None: random
    windows only); weights: {class: quota multiplier} (see class_weights), default 1."""
    from tqdm import tqdm

    cfg = cfg or SamplingConfig()
    size = STAGE_SIZE[stage]
    rng = np.random.default_rng(seed)
    crops, labels, targets, frame_ids = [], [], [], []
    for i, (image, faces, classes) in enumerate(tqdm(frames, desc=f"mining {stage} samples", unit="frame",
                                                      total=total, disable=not progress, leave=False)):
        faces = np.asarray(faces, np.float64).reshape(-1, 4)
        face_weight = [(weights or {}).get(c, 1.0) for c in classes]
        candidates = detector.detect_stages(image)[STAGE_INPUT[stage]] if detector is not None else None
        windows, label, target = frame_windows(rng, image.shape, faces, candidates, stage, cfg, face_weight)
        ok = _valid(windows, image.shape)
        windows, label, target = windows[ok], label[ok], target[ok]
        crops.append(crop_windows(image, windows, size))
        labels.append(label)
        targets.append(target)
        frame_ids.append(np.full(len(label), i, np.int32))
    samples = SampleSet(size, np.concatenate(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
                        np.concatenate(labels) if labels else np.zeros(0, np.int8),
                        np.concatenate(targets) if targets else np.zeros((0, 4), np.float32),
                        np.concatenate(frame_ids) if frame_ids else np.zeros(0, np.int32))
    samples.counts = {"positives": int((samples.label == POSITIVE).sum()), "parts": int((samples.label == PART).sum()),
                      "negatives": int((samples.label == NEGATIVE).sum())}
    return samples


def to_input(crops, rng=None, augment=0.0) -> torch.Tensor:
    """uint8 (N,S,S,3) crops -> the nets' standardised float input (N,3,S,S); with `augment` > 0 that
    share of the crops is seen at low resolution and as many with other brightness and contrast."""
    from mtcnn.cascade import standardise

    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    if augment > 0 and len(x):
        x = low_resolution(x, rng, augment)
        x = light_jitter(x, rng, augment)
    return standardise(x)


def low_resolution(x, rng, fraction):
    """A random share of the crops re-rendered from a third to 0.6 of their size, as a CCTV face of 15-25
    px reaches RNet (24) and ONet (48): the stages learn faces and background at that blockiness alike."""
    size = x.shape[-1]
    if size < 24:
        return x
    pick = np.flatnonzero(rng.random(len(x)) < fraction)
    small = rng.integers(size // 3, int(size * 0.6) + 1, len(pick))
    x = x.clone()
    for s in np.unique(small):
        idx = torch.as_tensor(pick[small == s])
        shrunk = F.interpolate(x[idx], size=(int(s), int(s)), mode="area")
        x[idx] = F.interpolate(shrunk, size=(size, size), mode="area")
    return x


def light_jitter(x, rng, fraction):
    """Brightness (+-25 levels) and contrast (x0.7-1.3) changes on a random share of the crops."""
    n = len(x)
    use = torch.as_tensor(rng.random(n) < fraction)
    gain = torch.as_tensor(rng.uniform(0.7, 1.3, n), dtype=x.dtype)
    shift = torch.as_tensor(rng.uniform(-25, 25, n), dtype=x.dtype)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    jittered = ((x - mean) * gain[:, None, None, None] + mean + shift[:, None, None, None]).clamp(0, 255)
    return torch.where(use[:, None, None, None], jittered, x)
