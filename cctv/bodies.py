"""People by their bodies, for when their faces are turned away or too small: moving regions against a
background model, tracked with the same ByteTrack wrapper as faces (cctv.tracking).

The background is a running average of a small grayscale copy of the frame that learns fast (`background_s`)
where nothing is in front of it and almost not at all (`foreground_s`) where something is: a person who
walks in and stands still for half a minute stays foreground (OpenCV's MOG2, which learns everywhere, let
standing people fade into the background and cut each person into 2-4 tracks on one_by_one_people.mp4),
while a chair moved for good melts into the background within minutes. The foreground mask is cleaned
(an opening removes specks, a tall closing joins a person's head, torso and legs) and its blobs, grown
slightly and merged where they touch, are the bodies. When most of the view changes at once (the camera
moved, the light switched) the background starts again from the current frame.
"""
import cv2
import numpy as np

from mtcnn.cascade import merge_boxes

from .tracking import FaceTracker


class BodyDetector:
    """`detector(frame) -> boxes (N,4) float32 x1,y1,x2,y2 in frame pixels` of the bodies in an RGB frame."""

    def __init__(self, fps, width=128, threshold=25, background_s=2.0, foreground_s=300.0, min_share=0.004,
                 reset_share=0.5, join_px=2):
        fps = float(fps) if fps and fps > 0 else 25.0
        self.width, self.threshold, self.min_share, self.reset_share = width, threshold, min_share, reset_share
        self.join_px = join_px
        self.learn_background = 1 - np.exp(-1 / (background_s * fps))
        self.learn_foreground = 1 - np.exp(-1 / (foreground_s * fps))
        self.background = None
        self.open = np.ones((2, 2), np.uint8)
        self.close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 9))  # taller than wide: a standing body
        self.near = np.ones((5, 5), np.uint8)  # pixels this close to foreground learn as foreground

    def small(self, frame):
        """Grayscale, shrunk by a whole factor from a crop to its multiple (OpenCV's fast path: 506 rows by 6
        takes the slow one, 2-3x the time), blurred; float32."""
        h, w = frame.shape[:2]
        k = max(1, w // self.width)
        gray = cv2.cvtColor(frame[:h // k * k, :w // k * k], cv2.COLOR_RGB2GRAY)
        if k > 1:
            gray = cv2.resize(gray, (w // k, h // k), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(gray, (3, 3), 0).astype(np.float32)

    def __call__(self, frame):
        small = self.small(frame)
        if self.background is None or self.background.shape != small.shape:
            self.background = small
            return np.zeros((0, 4), np.float32)
        mask = (cv2.absdiff(small, self.background) > self.threshold).astype(np.uint8)
        if cv2.countNonZero(mask) > self.reset_share * mask.size:
            self.background = small
            return np.zeros((0, 4), np.float32)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close)
        rate = np.where(cv2.dilate(mask, self.near) > 0, self.learn_foreground, self.learn_background)
        self.background += rate.astype(np.float32) * (small - self.background)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        g = self.join_px  # blobs this close are one body (an arm, a head cut off by a dark collar)
        blobs = [(x - g, y - g, x + w + g, y + h + g) for x, y, w, h, area in stats[1:count]
                 if area >= self.min_share * mask.size]
        if not blobs:
            return np.zeros((0, 4), np.float32)
        merged = np.clip(np.array(merge_boxes(blobs), np.float32).reshape(-1, 4) + [g, g, -g, -g], 0,
                         [mask.shape[1], mask.shape[0]] * 2)
        k = max(1, frame.shape[1] // self.width)
        return merged * np.float32(k)


class BodyTracker:
    """`tracker.update(frame) -> (boxes (N,4), ids (N,))`: the frame's bodies and their track ids (-1: not yet
    tracked). A body needs 3 looks in a row for an id and keeps it through `lost_s` seconds unseen. Bodies are
    looked for at about `max_fps` (walking people need no more; every 5th frame of a 25 fps source): the frames
    between repeat the last answer."""

    def __init__(self, fps, lost_s=3.0, max_fps=5.0, detector=None):
        fps = float(fps) if fps and fps > 0 else 25.0
        self.step = max(1, int(fps / max_fps + 0.5))
        self.detector = detector or BodyDetector(fps / self.step)
        self.tracker = FaceTracker(fps / self.step, lost_s=lost_s, high_prob=0.5, buffer_ratio=0.2, min_iou=0.1,
                                   min_frames=3)
        self.frames, self.last = 0, (np.zeros((0, 4), np.float32), np.zeros(0, int))

    def update(self, frame):
        self.frames += 1
        if (self.frames - 1) % self.step == 0:
            boxes = self.detector(frame)
            self.last = boxes, self.tracker.update(boxes, np.ones(len(boxes), np.float32))
        return self.last
