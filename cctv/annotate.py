"""Drawing on frames (in place, RGB): a box per face, green protected / red unprotected with its score, and a
banner with protected/total (red from an alert until enough faces are protected again)."""
import cv2
import numpy as np

GREEN = (0, 200, 0)
RED = (230, 0, 0)
WHITE = (255, 255, 255)
BANNER_BG = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(frame):
    """Line and text sizes that read well from 270p to 1080p."""
    return max(frame.shape[0], 270) / 540.0


def draw_faces(frame, boxes, p_protected, threshold=0.5):
    """Boxes with 'protected 0.97' / 'unprotected 0.88' (the score of the class shown)."""
    s = _scale(frame)
    thickness = max(1, round(2 * s))
    for (x1, y1, x2, y2), p in zip(np.asarray(boxes).reshape(-1, 4).round().astype(int), p_protected):
        protected = p >= threshold
        color = GREEN if protected else RED
        label = f"{'protected' if protected else 'unprotected'} {p if protected else 1 - p:.2f}"
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        _label(frame, label, (x1, y1), color, max(0.35, 0.5 * s), thickness)
    return frame


def draw_banner(frame, protected, total, alert=False):
    """Top-left banner 'protected 3/4'; 'MASK ALERT' in red while an alert's condition holds."""
    s = _scale(frame)
    text = f"protected {protected}/{total}" + ("  MASK ALERT" if alert else "")
    scale, thickness = max(0.45, 0.6 * s), max(1, round(2 * s))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(3, round(6 * s))
    cv2.rectangle(frame, (0, 0), (tw + 2 * pad, th + base + 2 * pad), RED if alert else BANNER_BG, cv2.FILLED)
    cv2.putText(frame, text, (pad, pad + th), FONT, scale, WHITE, thickness, cv2.LINE_AA)
    return frame


def _label(frame, text, corner, color, scale, thickness):
    """Filled label above the box's top-left corner (below it when there is no room above)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, max(1, thickness - 1))
    x, y = corner
    top = y - th - base - 2
    if top < 0:
        top = y
    cv2.rectangle(frame, (x, top), (x + tw + 2, top + th + base + 2), color, cv2.FILLED)
    cv2.putText(frame, text, (x + 1, top + th + 1), FONT, scale, WHITE, max(1, thickness - 1), cv2.LINE_AA)
