"""Thumbnails for the alerts table, as base64 JPEG data URIs (the report is one self-contained file)."""
import base64
from fractions import Fraction

import av
import cv2
import numpy as np

from ..video import rgb_array

THUMB_WIDTH = 480  # shown at 320 px: sharp on high-density screens
JPEG_QUALITY = 80


def data_uri(rgb: np.ndarray, width=THUMB_WIDTH) -> str:
    """An RGB image, downscaled to `width` (never up), as a JPEG data URI."""
    h, w = rgb.shape[:2]
    if w > width:
        rgb = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def image_file_uri(path, width=THUMB_WIDTH) -> str | None:
    """A snapshot file as a thumbnail data URI, or None when it can't be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else data_uri(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width)


def frames_at(video_path, times_s, width=THUMB_WIDTH) -> dict:
    """{time_s: data URI} of the recording's frames at those times (seeking to the keyframe before each);
    times it can't reach are left out."""
    found = {}
    try:
        with av.open(str(video_path)) as container:
            stream = container.streams.video[0]
            for t in sorted(set(times_s)):
                frame = _frame_at(container, stream, t)
                if frame is not None:
                    found[t] = data_uri(frame, width)
    except (av.error.FFmpegError, OSError, IndexError):
        pass
    return found


def _frame_at(container, stream, time_s):
    base = stream.time_base or Fraction(1, 90000)
    target = int(Fraction(time_s).limit_denominator(10000) / base)
    container.seek(max(0, target), stream=stream, backward=True, any_frame=False)
    step = 1 / float(stream.average_rate or 25) / 2
    last = None
    for frame in container.decode(stream):
        if frame.pts is None:
            continue
        last = frame
        if float(frame.pts * base) >= time_s - step:
            break
    return None if last is None else rgb_array(last)
