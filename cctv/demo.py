"""The embedded default input for `cctv_mask_detector.py --demo`: no download, no shared data.

A short clip generated from scikit-image's bundled public-domain NASA astronaut photo (Eileen Collins):
the camera slowly pans and zooms; for the first half the face is bare, for the second half it wears a
synthetic light-blue surgical mask drawn over nose, mouth and chin from MTCNN's landmarks on the first
frame. So the demo shows red boxes and an alert, then green boxes. Deterministic.
"""
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .errors import UserError
from .images import load_image
from .video import VideoWriter

WIDTH, HEIGHT, FPS, SECONDS = 480, 270, 25, 4
MASK_BLUE = (168, 208, 236)
PLEAT_BLUE = (128, 170, 210)
LOOP_WHITE = (235, 240, 245)


def astronaut_path() -> Path:
    path = Path(str(resources.files("skimage") / "data" / "astronaut.png"))
    if not path.is_file():
        raise UserError(f"{path}: scikit-image's bundled astronaut photo is missing (reinstall scikit-image)")
    return path


def camera_window(i, n):
    """The photo region (x0, y0, width) seen in frame i of n: a slow pan towards the face and a zoom in."""
    u = i / max(n - 1, 1)
    width = 448 - 64 * u
    cx, cy = 250 - 30 * u, 150 - 15 * u
    height = width * HEIGHT / WIDTH
    return cx - width / 2, cy - height / 2, width


def render_frame(photo, window):
    x0, y0, width = window
    s = WIDTH / width
    matrix = np.float32([[s, 0, -x0 * s], [0, s, -y0 * s]])
    return cv2.warpAffine(photo, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def to_photo(points, window):
    x0, y0, width = window
    return np.asarray(points, np.float64) * (width / WIDTH) + [x0, y0]


def draw_mask(photo, box, landmarks):
    """A surgical mask from the nose bridge to under the chin, between the cheeks, with pleats and ear loops."""
    photo = photo.copy()
    x1, y1, x2, y2 = box
    fw, fh = x2 - x1, y2 - y1
    (lex, ley), (rex, rey), (nx, ny), (mlx, mly), (mrx, mry) = landmarks
    eye_y, mouth_y = (ley + rey) / 2, (mly + mry) / 2
    top, bottom = ny - 0.45 * (ny - eye_y), y2 + 0.03 * fh
    left, right = x1 + 0.03 * fw, x2 - 0.03 * fw
    side = top + 0.12 * (bottom - top)
    low = mouth_y + 0.45 * (bottom - mouth_y)
    outline = np.array([
        (left, side), (nx - 0.22 * fw, top), (nx, top - 0.04 * fh), (nx + 0.22 * fw, top), (right, side),
        (right - 0.04 * fw, low), (nx + 0.2 * fw, bottom - 0.03 * fh), (nx, bottom), (nx - 0.2 * fw, bottom - 0.03 * fh),
        (left + 0.04 * fw, low),
    ])
    cv2.fillPoly(photo, [_px(outline)], MASK_BLUE, cv2.LINE_AA, 4)
    thickness = max(1, round(fw / 60))
    for k in (0.3, 0.5, 0.7):  # pleats
        y = top + k * (bottom - top)
        cv2.line(photo, _pt(left + 0.06 * fw, y), _pt(right - 0.06 * fw, y), PLEAT_BLUE, thickness, cv2.LINE_AA)
    for edge, ear in ((left, x1 - 0.04 * fw), (right, x2 + 0.04 * fw)):  # ear loops
        cv2.line(photo, _pt(edge, side), _pt(ear, eye_y), LOOP_WHITE, thickness, cv2.LINE_AA)
        cv2.line(photo, _pt(edge, low), _pt(ear, eye_y + 0.5 * (mouth_y - eye_y)), LOOP_WHITE, thickness,
                 cv2.LINE_AA)
    return photo


def _px(points):
    return np.round(np.asarray(points) * 16).astype(np.int32)  # 4 fractional bits, for cv2's shift=4


def _pt(x, y):
    return int(round(x)), int(round(y))


def make_demo_clip(folder, detector) -> Path:
    """Write `<folder>/demo_input.mp4` (480x270, 25 fps, 4 s) and return its path. `detector` is an MTCNN;
    its landmarks on the first frame place the mask."""
    photo = load_image(astronaut_path())
    n = FPS * SECONDS
    first = camera_window(0, n)
    boxes, probs, points = detector.detect(render_frame(photo, first), landmarks=True)
    if len(boxes) == 0:
        raise RuntimeError("demo: MTCNN found no face in the astronaut photo")
    best = int(np.argmax(probs))
    box = to_photo(np.asarray(boxes[best]).reshape(2, 2), first).ravel()
    masked = draw_mask(photo, box, to_photo(points[best], first))
    path = Path(folder) / "demo_input.mp4"
    with VideoWriter(path, WIDTH, HEIGHT, FPS, crf=18) as writer:
        for i in range(n):
            writer.write(render_frame(photo if i < n // 2 else masked, camera_window(i, n)))
    return path

