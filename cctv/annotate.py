"""Drawing on frames (in place, RGB): a box per face, green protected / red unprotected with its score (or,
for a tracked face, its person's id and decided state: grey while not known), and a banner with
protected/total (red from an alert while its condition holds)."""
import cv2
import numpy as np

GREEN = (0, 200, 0)
RED = (230, 0, 0)
WHITE = (255, 255, 255)
GREY = (120, 120, 120)
BANNER_BG = (30, 30, 30)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(frame):
    """Line and text sizes that read well from 270p to 1080p."""
    return max(frame.shape[0], 270) / 540.0


def draw_faces(frame, boxes, p_protected, threshold=0.5):
    """Boxes with 'protected 0.97' / 'unprotected 0.88' (the score of the class shown)."""
    for box, p in zip(np.asarray(boxes).reshape(-1, 4), p_protected):
        protected = p >= threshold
        label = f"{'protected' if protected else 'unprotected'} {p if protected else 1 - p:.2f}"
        draw_track_box(frame, box, label, GREEN if protected else RED)
    return frame


def draw_people(frame, boxes, p_protected, track_ids, people, threshold=0.5):
    """Tracked faces labelled with their person: '#7 protected' (green), '#7 unprotected' (red), '#7 unknown'
    (grey; also a track not yet counted as a person, or a static one: '#3 static'). Untracked faces as
    draw_faces does. Bodies that are people are boxed thinly: with their face track's id and state once a face
    on them counts ('#7 unprotected'), else grey 'body 4 unknown' (a person whose face is turned away)."""
    from .people import PROTECTED, UNPROTECTED

    boxes = np.asarray(boxes).reshape(-1, 4)
    untracked = np.asarray(track_ids) < 0
    draw_faces(frame, boxes[untracked], np.asarray(p_protected)[untracked], threshold)
    for box, tid in zip(boxes[~untracked], np.asarray(track_ids)[~untracked]):
        person = people.get(tid)
        if person is None:
            continue
        state = "static" if person.static else person.state
        color = GREY if not person.is_person else {PROTECTED: GREEN, UNPROTECTED: RED}.get(person.state, GREY)
        draw_track_box(frame, box, f"#{tid} {state}", color)
    for body in people.bodies_in_view():  # thin: the person's face box, where seen, says more
        person = people.get(body.face_id) if body.has_face else None
        label = f"#{body.face_id} {person.state}" if person else f"body {body.track_id} unknown"
        color = {PROTECTED: GREEN, UNPROTECTED: RED}.get(person.state, GREY) if person else GREY
        draw_track_box(frame, body.box, label, color, thin=True)
    return frame


def draw_track_box(frame, box, label, color, thin=False):
    s = _scale(frame)
    thickness = 1 if thin else max(1, round(2 * s))
    x1, y1, x2, y2 = np.asarray(box).round().astype(int)
    cv2.rectangle(frame, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
    _label(frame, label, (x1, y1), color, max(0.35, 0.5 * s), thickness)
    return frame


def draw_banner(frame, protected, total, alert=False, what="protected"):
    """Top-left banner 'protected 3/4' (`what` names what is counted, e.g. 'people protected');
    'MASK ALERT' in red while an alert's condition holds."""
    s = _scale(frame)
    text = f"{what} {protected}/{total}" + ("  MASK ALERT" if alert else "")
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
