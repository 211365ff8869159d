"""Synthetic masks painted on unmasked faces, as MaskTheFace and the mask_classification dataset paste them:
masked faces of every colour for the classifier, made from the unprotected faces we have.

Why: the training sources show mostly light-blue or white masks seen from the front, while a ceiling camera
shows black, navy and grey masks from above (the write-up's `channy_in`). Recolouring the real masks would
need their outline, which no label has; painting a mask on an unmasked face needs only its box.

The mask covers the lower face, nose to chin and cheek to cheek: a top edge that peaks at the nose bridge and
a half-ellipse to the chin, jittered in position, size and tilt. Colours are mostly dark (black, navy, grey),
also white, surgical blue, any colour and two-colour patterns, with shading (lighter where the nose lifts the
cloth, darker towards the chin and cheeks), pleats on some, noise, and soft edges, so it is no flat fill.
Images are HxWx3 uint8 RGB; a box is x1, y1, x2, y2 in pixels; everything draws from the Generator it is given.
"""
import cv2
import numpy as np

# colour family -> probability; dark ones first: the masks the training photos lack
COLOUR_FAMILIES = {"black": 0.3, "navy": 0.15, "grey": 0.15, "white": 0.1, "surgical": 0.1, "any": 0.1,
                   "pattern": 0.1}
_SHIFT = 4  # fillPoly's fractional bits: faces of 10 px need sub-pixel outlines


def mask_outline(box, rng):
    """The mask's polygon (K,2) float for a face box: nose to chin, cheek to cheek, jittered and tilted."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2) / 2 + rng.uniform(-0.06, 0.06) * w
    half = w * rng.uniform(0.4, 0.5)                    # cheek to cheek
    top = y1 + h * rng.uniform(0.42, 0.55)              # nose bridge
    side = top + h * rng.uniform(0.04, 0.12)            # the top edge drops towards the cheeks
    chin = y1 + h * rng.uniform(0.95, 1.06)
    t = np.linspace(-1, 1, 13)
    top_edge = np.stack([cx + half * t, top + (side - top) * t ** 2], 1)
    a = np.linspace(0, np.pi, 25)  # right cheek -> chin -> left cheek
    lower = np.stack([cx + half * np.cos(a), side + (chin - side) * np.sin(a)], 1)
    points = np.concatenate([top_edge, lower])
    angle = np.deg2rad(rng.uniform(-12, 12))
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([cx, (top + chin) / 2])
    return (points - centre) @ turn.T + centre


def mask_colours(rng):
    """(family, base RGB, second RGB for patterns or None)."""
    families = list(COLOUR_FAMILIES)
    family = families[rng.choice(len(families), p=np.array(list(COLOUR_FAMILIES.values())))]
    second = None
    if family == "black":
        base = np.full(3, rng.uniform(8, 45)) + rng.uniform(-4, 4, 3)
    elif family == "navy":
        base = np.array([rng.uniform(15, 45), rng.uniform(20, 55), rng.uniform(55, 110)])
    elif family == "grey":
        base = np.full(3, rng.uniform(50, 130)) + rng.uniform(-6, 6, 3)
    elif family == "white":
        base = np.full(3, rng.uniform(200, 250)) + rng.uniform(-6, 6, 3)
    elif family == "surgical":
        base = np.array([rng.uniform(130, 190), rng.uniform(190, 230), rng.uniform(220, 252)])
    else:
        base = _hsv_colour(rng)
        if family == "pattern":
            second = _hsv_colour(rng) if rng.random() < 0.5 else np.full(3, rng.choice([20.0, 235.0]))
    return family, np.clip(base, 0, 255), second


def _hsv_colour(rng):
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(70, 230), rng.integers(60, 240)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def mask_texture(shape, box, rng):
    """An HxWx3 float image of cloth: the base colour, shaded around the face box, with pleats or a pattern
    on some and sensor-like noise."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    fw, fh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    family, base, second = mask_colours(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = (xx - (x1 + x2) / 2) / (fw / 2), (yy - y1) / fh  # -1..1 across the face, 0..1 down it
    cloth = np.empty((h, w, 3), np.float32)
    cloth[:] = base
    if second is not None:
        period = fw * rng.uniform(0.12, 0.3)
        if rng.random() < 0.5:  # stripes
            on = np.sin((xx * rng.uniform(-1, 1) + yy) * 2 * np.pi / period) > 0
        else:  # dots
            on = (np.sin(xx * 2 * np.pi / period) * np.sin(yy * 2 * np.pi / period)) > 0.5
        cloth[on] = second
    # light from above: the cloth over the nose catches it, the chin and cheeks turn away
    light = 1 + rng.uniform(0.05, 0.25) * (0.75 - v) - rng.uniform(0.05, 0.2) * u ** 2
    if family in ("white", "surgical") and rng.random() < 0.6:  # pleats
        light -= 0.12 * (np.sin((v - rng.uniform(0, 1)) * 2 * np.pi * rng.uniform(3, 5)) > 0.6)
    shade = rng.uniform(-6, 6) + rng.normal(0, rng.uniform(2, 8), (h, w, 1)).astype(np.float32)
    return cloth * light[..., None] + shade


def paint_mask(image, box, rng):
    """(image with a mask painted over the face in `box`, the painted region as an HxW bool array)."""
    h, w = image.shape[:2]
    box = np.asarray(box, np.float64)
    pad = 0.3 * max(box[2] - box[0], box[3] - box[1]) + 3  # the jittered, tilted mask stays inside
    left, top = int(max(box[0] - pad, 0)), int(max(box[1] - pad, 0))
    right, bottom = int(min(box[2] + pad, w)), int(min(box[3] + pad, h))
    region = np.zeros((h, w), bool)
    if right <= left or bottom <= top:
        return image, region
    local = box - [left, top, left, top]
    roi = image[top:bottom, left:right]
    outline = np.round(mask_outline(local, rng) * (1 << _SHIFT)).astype(np.int32)
    coverage = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(coverage, [outline], 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    alpha = coverage.astype(np.float32) / 255.0
    soft = 0.03 * float(local[2] - local[0])  # edges as soft as the face's own at any size
    if soft > 0.5:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft)
    alpha = alpha[..., None]
    cloth = mask_texture(roi.shape, local, rng)
    out = image.copy()
    out[top:bottom, left:right] = np.clip(roi.astype(np.float32) * (1 - alpha) + cloth * alpha + 0.5, 0, 255)
    region[top:bottom, left:right] = coverage >= 128
    return out, region


def paint_masks(image, boxes, protected, rng, share=1.0):
    """Paint masks on a share of the unprotected faces: (image, painted (F,) bool). Protected faces are never
    painted over (their own mask stays as it is)."""
    painted = np.array([not p and rng.random() < share for p in protected], bool)
    for box in np.asarray(boxes, np.float32).reshape(-1, 4)[painted]:
        image, _ = paint_mask(image, box, rng)
    return image, painted
