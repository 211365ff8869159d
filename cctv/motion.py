"""Motion gating: a still camera costs almost nothing.

`ChangeDetector` finds the parts of a frame that changed, on a small grayscale copy (cheap: well under a
millisecond). `MotionGate` turns that into a detection plan per frame: the whole frame (the first, then at
least every `idle_keyframe_s`, or while the view moves as a whole), some rectangles (what changed, where faces
were last seen, and at each keyframe what changed since the last one and where people are; grown by a margin
and merged), or nothing (no change, no face: detection is skipped). `GatedDetector` wraps an MTCNN
with the same `detect()` contract and runs the plan; the cascade searches a rectangle on the whole frame's
pyramid, so a face inside it comes out as whole-frame detection finds it (mtcnn.cascade.level_windows).

Hooks for tracking: `gate.request_keyframe()` makes the next frame a whole-frame detection, and
`gate.people_in_view` and `gate.people_boxes` (set by the job after each frame) keep keyframes coming every
`keyframe_s` while tracked people are in view, searching where they are even when they stand so still that
nothing changes: a face that turns towards the camera without moving is found within `keyframe_s`, not at
the next idle keyframe.
"""
from collections import deque

import cv2
import numpy as np

from mtcnn.cascade import merge_boxes

from .detection_eval import box_iou

MODES = ("auto", "on", "off")
METHODS = ("diff", "mog2")


class ChangeDetector:
    """Rectangles (x1, y1, x2, y2, frame pixels) of what changed since the previous frame, and the share of
    the view that changed. method "diff": absolute difference of consecutive frames, shrunk by a whole factor
    to `width`..2x`width` px and blurred (H.264 noise averages out); "mog2": OpenCV's MOG2 background
    subtractor on the same small frames (see benchmarks/bench_motion.py for what each costs and keeps)."""

    def __init__(self, width=160, threshold=10, method="diff"):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        self.width, self.threshold, self.method = width, threshold, method
        self.previous = None
        self.mog2 = cv2.createBackgroundSubtractorMOG2(history=100, varThreshold=25, detectShadows=False) \
            if method == "mog2" else None
        self.kernel = np.ones((3, 3), np.uint8)

    def small(self, frame):
        """The frame as the detector sees it: grayscale, shrunk by a whole factor (OpenCV's fast path: 0.14 ms
        at 768x432, against 0.6 ms to an exact width), blurred (uint8)."""
        h, w = frame.shape[:2]
        k = max(1, w // self.width)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if k > 1:
            gray = cv2.resize(gray, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(gray, (3, 3), 0)

    def __call__(self, frame):
        """(rectangles in frame pixels, changed share of the view 0..1) for this frame."""
        small = self.small(frame)
        if self.mog2 is not None:
            mask = self.mog2.apply(small)
        elif self.previous is None or self.previous.shape != small.shape:
            mask = np.zeros_like(small)
        else:
            mask = self._difference(self.previous, small)
        self.previous = small
        return self._rectangles(mask, frame.shape)

    def since(self, before, frame_shape):
        """Rectangles of what changed between the small copy `before` (an earlier .previous) and the latest,
        beyond a change of the whole view's brightness: a camera's exposure drifts by 6-14 grey levels in
        2 s when people come and go (one_by_one_people), which made every pixel look changed."""
        if before is None or before.shape != self.previous.shape:
            return [(0, 0, frame_shape[1], frame_shape[0])]
        change = cv2.subtract(self.previous, before, dtype=cv2.CV_16S)
        change -= np.int16(np.median(change))
        mask = (np.abs(change) > self.threshold).astype(np.uint8)
        return self._rectangles(mask, frame_shape)[0]

    def _difference(self, before, after):
        return cv2.threshold(cv2.absdiff(after, before), self.threshold, 1, cv2.THRESH_BINARY)[1]

    def _rectangles(self, mask, frame_shape):
        if not cv2.countNonZero(mask):  # the usual idle frame: done
            return [], 0.0
        mask = cv2.dilate(mask, self.kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        sx, sy = frame_shape[1] / mask.shape[1], frame_shape[0] / mask.shape[0]
        boxes = [(x * sx, y * sy, (x + w) * sx, (y + h) * sy)
                 for x, y, w, h, area in stats[1:count] if area >= 4]  # 1-2 px specks: noise
        return boxes, float(np.count_nonzero(mask)) / mask.size


class MotionGate:
    """Per frame, what to detect on: None (the whole frame), a list of rectangles, or [] (nothing).

    mode "on": gate always; "off": whole frames always; "auto": gate while the camera is still, whole frames
    while the view moves as a whole (a pan, a hand-held camera; see view_moves). Every `keyframe_s` seconds a
    keyframe searches, beside the frame's own changes, everything that changed since the last keyframe (a
    change too slow to show between two frames: a face turning towards the camera; not a drift of the whole
    view's brightness, see ChangeDetector.since), the remembered faces and
    the people the job sees (`people_boxes`, standing still or not); the unchanged rest would give the same
    answer as last time. A whole frame comes first, after request_keyframe(), and at least every
    `idle_keyframe_s` (a change below the threshold that crept in). While nothing at all changed and no face or
    person is in view, keyframes wait `idle_keyframe_s` too. Rectangles covering more than `full_share` of
    the frame become the whole frame (cheaper in one piece)."""

    def __init__(self, fps, mode="auto", keyframe_s=2.0, method="diff", margin=0.15, full_share=0.6,
                 idle_keyframe_s=30.0, detector=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode, self.margin, self.full_share = mode, margin, full_share
        self.fps = float(fps)
        self.keyframe_every = max(1, round(keyframe_s * self.fps))
        self.idle_keyframe_every = max(self.keyframe_every, round(idle_keyframe_s * self.fps))
        self.changed = False  # anything changed since the last keyframe
        self.changes = detector or ChangeDetector(method=method)
        self.second = max(2, round(float(fps)))
        self.history = deque(maxlen=self.second + 1)  # the last second's small frames (about 20 KB each)
        self.moving_votes = deque(maxlen=2)  # the last two half-second checks
        self.since_keyframe = None  # frames since the last keyframe; None: none yet
        self.keyframe_requested = False
        self.people_in_view = False  # set by the job from its tracks (see _keyframe_due)
        self.people_boxes = ()  # set by the job: where its people are, searched at every keyframe
        self.keyframe_small = None  # the change detector's small copy of the last keyframe
        self.since_whole = 0  # frames since the last whole-frame detection
        self.frames_seen = 0

    def request_keyframe(self):
        """The next frame gets a whole-frame detection (tracking calls this when a person stands still)."""
        self.keyframe_requested = True

    @property
    def view_moving(self):
        """Whether the whole view moved in the last two half-second checks (auto mode then detects whole
        frames; one still check turns gating back on)."""
        return len(self.moving_votes) == 2 and all(self.moving_votes)

    def plan(self, frame, faces=()):
        """What to search in `frame`: None (whole frame), rectangles, or [] (skip). faces: boxes where faces
        were found lately (FaceMemory), searched again (a face that holds still stays found)."""
        if self.mode == "off":
            return None
        boxes, _ = self.changes(frame)
        if self.mode == "auto":
            self._check_view(self.changes.previous)
        h, w = frame.shape[:2]
        self.changed = self.changed or bool(boxes)
        if self._whole_due() or (self.mode == "auto" and self.view_moving):
            return self._keyframe(whole=True)
        wanted = list(boxes) + [tuple(b) for b in faces]
        keyframe = self._keyframe_due(len(faces))
        if keyframe:
            wanted += self.changes.since(self.keyframe_small, frame.shape) + [tuple(b) for b in self.people_boxes]
        regions = grow_and_merge(wanted, self.margin, w, h)
        if sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in regions) > self.full_share * w * h:
            return self._keyframe(whole=True)
        if keyframe:
            self._keyframe(whole=False)
        else:
            self.since_keyframe += 1
            self.since_whole += 1
        return regions

    def _check_view(self, small):
        """Every half second, compare the frame with the one a second before (see view_moves)."""
        self.history.append(small)
        self.frames_seen += 1
        if len(self.history) == self.history.maxlen and self.frames_seen % max(1, self.second // 2) == 0:
            self.moving_votes.append(view_moves(self.history[0], small))

    def _whole_due(self):
        return self.since_keyframe is None or self.keyframe_requested or \
            self.since_whole + 1 >= self.idle_keyframe_every

    def _keyframe_due(self, faces):
        busy = self.changed or faces or self.people_in_view
        wait = self.keyframe_every if busy else self.idle_keyframe_every
        return self.since_keyframe + 1 >= wait

    def _keyframe(self, whole):
        self.since_keyframe, self.keyframe_requested, self.changed = 0, False, False
        self.since_whole = 0 if whole else self.since_whole + 1
        self.keyframe_small = self.changes.previous
        return None


def view_moves(before, after, threshold=20, moving_share=0.4, min_shift=1.0, max_response=0.6):
    """Whether the whole view moved between two small grayscale frames a second apart: most of it changed
    (more than `moving_share`), or it shifted as a whole (phase correlation: a shift of `min_shift` px or more
    with a weak peak). Measured (bench_motion.py): a still camera changes on 1-37% of its view in a second
    with people moving, the demo's slow pan on 46-54%, a hand-held 1080p clip on 58-76%."""
    if before.shape != after.shape:
        return True
    changed = np.count_nonzero(cv2.absdiff(before, after) > threshold) / before.size
    (dx, dy), response = cv2.phaseCorrelate(before.astype(np.float32), after.astype(np.float32))
    return changed > moving_share or (abs(dx) + abs(dy) >= min_shift and response < max_response)


def grow_and_merge(boxes, margin, width, height):
    """Rectangles grown by `margin` of their size (at least 8 px) on every side, clipped to the frame, the
    overlapping ones merged: [(x1, y1, x2, y2)] in whole pixels."""
    grown = []
    for x1, y1, x2, y2 in boxes:
        dx, dy = max(8.0, margin * (x2 - x1)), max(8.0, margin * (y2 - y1))
        grown.append([max(0, int(x1 - dx)), max(0, int(y1 - dy)),
                      min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))])
    return [tuple(b) for b in merge_boxes([b for b in grown if b[2] > b[0] and b[3] > b[1]])]


class FaceMemory:
    """Where faces were found in the last `frames` frames (one box per place, the latest): searched again in
    every frame, so that a face that holds still, or one the detector finds only now and then (a face turned
    half away, a poster), stays found between keyframes."""

    def __init__(self, frames):
        self.frames, self.now = frames, 0
        self.boxes = np.zeros((0, 4), np.float32)
        self.seen = np.zeros(0, np.int64)

    def update(self, found):
        """Record one frame's boxes (N,4); forget places not seen for `frames` frames."""
        self.now += 1
        found = np.asarray(found, np.float32).reshape(-1, 4)
        keep = self.now - self.seen < self.frames
        if len(found) and keep.any():
            keep &= box_iou(self.boxes, found).max(axis=1) < 0.3  # a face's new box replaces its old one
        self.boxes = np.concatenate([self.boxes[keep], found])
        self.seen = np.concatenate([self.seen[keep], np.full(len(found), self.now)])


class GatedDetector:
    """An MTCNN behind a MotionGate, with MTCNN's detect() contract for a batch of same-size frames:
    detect(frames) -> (boxes list, probs list). On the CPU frame by frame (a frame's plan includes the places
    faces were found in the last `memory_s` seconds, see FaceMemory); on a GPU the batch goes through as one
    (every frame searches the batch's rectangles and the remembered faces). Frames planned as [] never reach
    the MTCNN. `stats` counts the plans."""

    def __init__(self, mtcnn, gate, memory_s=None):
        self.mtcnn, self.gate = mtcnn, gate
        self.batched = getattr(mtcnn, "device", None) is not None and mtcnn.device.type != "cpu"
        self.memory = FaceMemory(gate.keyframe_every if memory_s is None else max(1, round(memory_s * gate.fps)))
        self.stats = {"skipped": 0, "regions": 0, "whole": 0}

    def request_keyframe(self):
        self.gate.request_keyframe()

    def detect(self, frames, landmarks=False):
        """(boxes, probs) per frame, and ONet's 5 landmarks per face (N,5,2) with landmarks=True."""
        frames = list(frames)
        chunks = [frames] if self.batched else [[f] for f in frames]
        boxes, probs, points = [], [], []
        for chunk in chunks:
            plans = [self.gate.plan(f, self.memory.boxes) for f in chunk]
            for p in plans:
                self.stats["whole" if p is None else "regions" if p else "skipped"] += 1
            if all(p is not None and not p for p in plans):
                b, s = [np.zeros((0, 4), np.float32)] * len(chunk), [np.zeros(0, np.float32)] * len(chunk)
                lm = [np.zeros((0, 5, 2), np.float32)] * len(chunk)
            elif landmarks:
                b, s, lm = self.mtcnn.detect(chunk, landmarks=True, regions=plans)
            else:  # a detector without landmarks will do
                (b, s), lm = self.mtcnn.detect(chunk, regions=plans), [None] * len(chunk)
            boxes += b
            probs += s
            points += lm
            for frame_boxes in b:
                self.memory.update(frame_boxes)
        return (boxes, probs, points) if landmarks else (boxes, probs)
