"""Privacy by default: faces pixelated in what leaves the machine (the annotated video, clips, snapshots).

`--blur_faces all` pixelates every face; `others` keeps the alert's own person visible (whoever the alert is
about) and pixelates everyone else; `none` draws on the faces as they are. The frames saved for labeling
are never blurred (labelers need faces): the job saves them from the raw frame before anything is drawn.
"""
import cv2
import numpy as np

BLUR_MODES = ("none", "all", "others")
ENLARGE = 1.4        # the box grows by this around its centre: MTCNN's boxes cut hair, ears and chin
BLOCKS_ACROSS = 4    # pixel blocks across an enlarged face: a blob stays, who it is does not (with 5, MTCNN
                     # still found 3 of 126 faces in four_people_masking's first second; with 4, none)


def faces_to_blur(mode, p_protected, threshold=0.5, track_ids=None, keep_track_ids=None):
    """Boolean mask over a frame's faces: which to pixelate.

    `others` keeps visible the people alerts are about: the faces whose track id is in `keep_track_ids`
    (the main job passes the people its alerts named); without track ids, every unprotected face."""
    p_protected = np.asarray(p_protected)
    if mode == "none":
        return np.zeros(len(p_protected), bool)
    if mode == "all":
        return np.ones(len(p_protected), bool)
    if mode != "others":
        raise ValueError(f"blur mode must be one of {BLUR_MODES}, got {mode!r}")
    if track_ids is not None and keep_track_ids is not None:
        return ~np.isin(np.asarray(track_ids), list(keep_track_ids))
    return p_protected >= threshold


def enlarged_box(box, width, height, enlarge=ENLARGE):
    """(x1, y1, x2, y2) ints: the box grown around its centre, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w, half_h = (x2 - x1) * enlarge / 2, (y2 - y1) * enlarge / 2
    return (max(0, int(cx - half_w)), max(0, int(cy - half_h)),
            min(width, int(np.ceil(cx + half_w))), min(height, int(np.ceil(cy + half_h))))


def pixelate_faces(frame, boxes, enlarge=ENLARGE, blocks=BLOCKS_ACROSS):
    """Pixelate each (enlarged) box of `frame` in place: the region is averaged down to about `blocks`
    blocks across and scaled back up without smoothing. Returns the frame."""
    height, width = frame.shape[:2]
    for box in np.asarray(boxes, np.float32).reshape(-1, 4):
        x1, y1, x2, y2 = enlarged_box(box, width, height, enlarge)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = frame[y1:y2, x1:x2]
        across = max(1, min(blocks, x2 - x1))
        down = max(1, round(across * (y2 - y1) / (x2 - x1)))
        small = cv2.resize(region, (across, down), interpolation=cv2.INTER_AREA)
        frame[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return frame


def pixelate_image(image, blocks=BLOCKS_ACROSS):
    """A face crop (a snapshot of one face) pixelated whole, in place. Returns it."""
    height, width = image.shape[:2]
    return pixelate_faces(image, [[0, 0, width, height]], enlarge=1.0, blocks=blocks)
