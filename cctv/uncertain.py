"""Low-confidence frames for active learning: the raw frame as JPEG plus a sidecar with our predictions in the
Suite label form (`<frame>.jpg.json`, what `spb upload dataset --include-label` uploads).

A frame is uncertain when a face's MTCNN probability lies in [band_lo, band_hi) or the classifier's
P(protected) lies within `margin` of 0.5. At most `max_per_second` frames per second of video are kept.

A cron job reads this folder, so each file appears whole: both are written under dot-prefixed temporary
names and renamed, the sidecar first and then the JPEG. Whoever sees a JPEG finds its sidecar beside it.
"""
import time
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_bytes
from .labels import write_suite_label
from .labels.classes import PROTECTED, UNPROTECTED


def is_uncertain(det_probs, p_protected, band=(0.7, 0.95), margin=0.15):
    det_probs, p_protected = np.asarray(det_probs), np.asarray(p_protected)
    in_band = (det_probs >= band[0]) & (det_probs < band[1])
    near_half = np.abs(p_protected - 0.5) < margin
    return bool(in_band.any() or near_half.any())


class UncertainFrameSaver:
    def __init__(self, folder, stem, live=False, band=(0.7, 0.95), margin=0.15, max_per_second=1.0,
                 threshold=0.5, jpeg_quality=95):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Files are named after the source and frame index; live runs add their start time (frame indices
        # restart with every run), file runs don't (a re-run rewrites the same names instead of duplicating).
        self.prefix = f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}" if live else stem
        self.band, self.margin, self.threshold = band, margin, threshold
        self.min_interval = 1.0 / max_per_second if max_per_second > 0 else float("inf")
        self.last_time = float("-inf")
        self.jpeg_quality = jpeg_quality
        self.saved = 0

    def consider(self, frame, frame_index, time_s, boxes, det_probs, p_protected):
        """Save the (unannotated) frame when it is uncertain and the rate limit allows. Returns the JPEG path
        or None."""
        if len(boxes) == 0 or time_s - self.last_time < self.min_interval:
            return None
        if not is_uncertain(det_probs, p_protected, self.band, self.margin):
            return None
        self.last_time = time_s
        return self.save(frame, frame_index, boxes, p_protected)

    def save(self, frame, frame_index, boxes, p_protected):
        jpeg = self.folder / f"{self.prefix}-frame{frame_index}.jpg"
        classes = [PROTECTED if p >= self.threshold else UNPROTECTED for p in p_protected]
        height, width = frame.shape[:2]
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise RuntimeError(f"{jpeg}: JPEG encoding failed")
        sidecar = jpeg.with_name(jpeg.name + ".json")
        write_suite_label(sidecar, boxes, classes, width, height)
        try:  # dot-prefixed, not *.jpg: invisible to globbing readers
            write_bytes(jpeg, data.tobytes(), suffix=".tmp")
        except BaseException:  # e.g. the disk is full: no sidecar left without its frame
            sidecar.unlink(missing_ok=True)
            raise
        self.saved += 1
        return jpeg

