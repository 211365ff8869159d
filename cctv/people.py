"""One decision per person: each face track collects the classifier's votes, weighted by how far to trust
them, and holds a state (protected, unprotected, or not yet known) that changes only on enough evidence.

Weights: a vote counts `size * detection * confidence * face_likeness`, where size grows from 0 at
`PeopleSettings.min_px` to 1 at `full_px` (tiny faces are guessed, not seen), detection is MTCNN's
probability, confidence is |2 P(protected) - 1| (a 0.5 from the classifier is no vote at all) and
face_likeness (unprotected votes only) says whether ONet's landmarks look like a face at all (see
`face_likeness`: the back of a head that MTCNN takes for a face has its "nose" down at its "mouth").
A person is not known until their votes weigh `min_evidence` in all. The state follows the recent votes,
faded with a half-life of `half_life_s` of video time: protected when the protected share of them reaches
`decide_share`, unprotected when it falls to 1 - decide_share while their detections look like a face on
average (`min_likeness`, faded over `likeness_half_life_s`), and in between it stays as it is (hysteresis).
A decided person changes state only on recent votes weighing half of `min_evidence`, so a person who puts a
mask on (or takes it off) flips after about a second of good frames, but one stray frame after a gap does
not.

A face that does not move is not a person walking anywhere (a face in a painting or on a poster). Box
positions cannot tell: MTCNN's boxes on a small painted face jitter by a quarter of its size, more than a
standing person's head moves. Pixels can: a track becomes a person once the pixels in its box change
(mean absolute difference to the same box `live_lag_s` earlier, faded over about a second) by
`live_level` grey levels, or its centre has travelled `move_frac` of its face size (walking); it is set
aside as static if neither happened within `static_s` seconds. Until then it is pending and counts for
nothing. (On four_people_masking.mp4 the painting's box changes by 0.5-2 levels, the four people's by
4-25 within their first 1.5 s.)
"""
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

PROTECTED, UNPROTECTED, UNKNOWN = "protected", "unprotected", "unknown"


@dataclass
class PeopleSettings:
    """Vote weights, the decision, the static test and how long an unseen person stays in view."""
    min_px: float = 8.0
    full_px: float = 32.0
    half_life_s: float = 0.5
    min_evidence: float = 1.0
    decide_share: float = 0.7
    move_frac: float = 0.5
    live_level: float = 4.0
    live_lag_s: float = 0.2
    live_fade_s: float = 0.5
    static_s: float = 4.0
    min_votes: int = 3  # a track seen fewer times is a fragment or a false detection, not a person
    face_nose: tuple = (0.7, 0.8)  # nose height between eye and mouth line: a face up to [0], none from [1]
    sure_prob: float = 0.95  # MTCNN this sure is a face whatever the landmarks (a bowed head)
    min_likeness: float = 0.5  # a track looking less like a face than this (faded mean) is not called unprotected
    likeness_half_life_s: float = 2.0
    body_move_frac: float = 0.5  # a body is a person once it has travelled half its width (walks) ...
    body_min_s: float = 1.0  # ... and been tracked this long
    body_head: float = 0.4  # a face belongs to the body whose top 40% holds its centre
    lost_s: float = 2.0  # a person unseen this long has left the view


def vote_weight(size, det_prob, p_protected, weights=PeopleSettings(), likeness=1.0):
    size_w = np.clip((np.asarray(size, float) - weights.min_px) / (weights.full_px - weights.min_px), 0.0, 1.0)
    return size_w * np.asarray(det_prob, float) * np.abs(2 * np.asarray(p_protected, float) - 1) * likeness


def face_likeness(landmarks, det_probs, weights=PeopleSettings()):
    """How far ONet's 5 landmarks (N,5,2: eyes, nose, mouth corners) look like a face, 0..1 per detection.

    The nose's height between the eye line and the mouth line: 0.48-0.67 on 90% of the faces of
    four_people_masking.mp4 (people facing the camera, turning, putting masks on), 0.73-1.0 on the backs of
    heads MTCNN takes for faces on one_by_one_people.mp4 (the "nose" slides down onto the "mouth"). 1 up to
    `face_nose[0]`, 0 from `face_nose[1]`; a mouth not below the eyes is no face. A detection MTCNN is sure
    of (`sure_prob`) counts whatever its landmarks: a bowed head's nose also drops."""
    points = np.asarray(landmarks, float).reshape(-1, 5, 2)
    eyes_y = points[:, :2, 1].mean(axis=1)
    mouth = points[:, 3:, 1].mean(axis=1) - eyes_y
    nose = (points[:, 2, 1] - eyes_y) / np.where(mouth > 0, mouth, 1.0)
    lo, hi = weights.face_nose
    likeness = np.where(mouth > 0, np.clip((hi - nose) / (hi - lo), 0.0, 1.0), 0.0)
    return np.where(np.asarray(det_probs, float).reshape(-1) >= weights.sure_prob, 1.0, likeness)


@dataclass
class Person:
    """One face track's evidence and decision."""
    track_id: int
    first_s: float
    last_s: float
    last_box: np.ndarray
    first_centre: np.ndarray
    state: str = UNKNOWN
    for_mask: float = 0.0  # faded vote weight saying protected
    against: float = 0.0  # ... and unprotected
    evidence: float = 0.0  # all vote weight so far, unfaded
    votes: int = 0
    likeness: float = 0.0  # faded sum of its detections' face-likeness ...
    likeness_n: float = 0.0  # ... and of their count
    moved: bool = False
    static: bool = False
    change: float = 0.0  # faded pixel change in the box (grey levels)
    lo: np.ndarray = None  # centre's bounding range since first seen
    hi: np.ndarray = None
    sizes: list = field(default_factory=list)
    best_quality: float = -1.0
    best_crop: np.ndarray = None
    heading_out: bool = False
    alerted: bool = False

    @property
    def centre(self):
        x1, y1, x2, y2 = self.last_box
        return np.array([(x1 + x2) / 2, (y1 + y2) / 2])

    @property
    def is_person(self):
        return self.moved and not self.static

    @property
    def share(self):
        total = self.for_mask + self.against
        return self.for_mask / total if total else 0.5


@dataclass
class Body:
    """One body track (cctv.bodies): a person once it has walked in; the faces seen on its upper part are the
    same person's, and decide their state."""
    track_id: int
    first_s: float
    last_s: float
    box: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    widths: list = field(default_factory=list)
    faces: set = field(default_factory=set)  # face track ids seen on it
    walked: bool = False
    face_id: int = None  # the first of its faces that counts as a person: that face track stands for it

    @property
    def has_face(self):
        return self.face_id is not None


class People:
    """All tracks of a run: `people.update(time_s, faces, frame)` after each frame. `in_view()` lists the
    people (moved, not static) seen in the last `lost_s` seconds; `counts()` gives in_view, protected,
    unprotected, unknown and seen (people ever counted). With body tracks (`bodies=(boxes, ids)` in update), a
    body that walked in and never showed a face that counts is a person too, not known (`faceless()`): one
    person, counted once, whether by face or by body."""

    def __init__(self, class_threshold=0.5, weights=None, zone=None, fps=25.0):
        self.threshold = class_threshold
        self.w = weights or PeopleSettings()
        self.zone = zone
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.greys = deque(maxlen=max(1, round(self.w.live_lag_s * self.fps)) + 1)
        self.tracks = {}
        self.bodies = {}
        self.now = 0.0
        self.left = {PROTECTED: 0, UNPROTECTED: 0, UNKNOWN: 0}  # people gone for good, by their last state

    def update(self, time_s, boxes, det_probs, p_protected, track_ids, frame=None, landmarks=None, bodies=None):
        """landmarks: ONet's (N,5,2) for the face-likeness of each vote (None: every detection counts);
        bodies: the frame's body boxes (M,4) and body track ids (M,) (cctv.bodies.BodyTracker), or None."""
        self.now = time_s
        if frame is not None and (self.tracks or np.any(np.asarray(track_ids) >= 0)):
            self.greys.append(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        else:  # no face to watch (most frames of an empty room): no grey copy to make
            self.greys.clear()
        likeness = np.ones(len(track_ids)) if landmarks is None or not len(track_ids) else \
            face_likeness(landmarks, det_probs, self.w)
        for box, prob, p, tid, like in zip(np.asarray(boxes).reshape(-1, 4), det_probs, p_protected, track_ids,
                                           likeness):
            if tid < 0:
                continue
            person = self.tracks.get(int(tid))
            if person is None:
                centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                person = self.tracks[int(tid)] = Person(int(tid), time_s, time_s, box, centre, lo=centre.copy(),
                                                        hi=centre.copy())
            # only an unprotected vote needs a face (a back of a head is "unprotected"); a mask hides the nose and
            # mouth that ONet's landmarks would show, and a protected vote raises no alert
            like = 1.0 if p >= self.threshold else float(like)
            self._observe(person, time_s, box, float(prob), float(p), frame, like)
        for person in self.tracks.values():
            if not person.moved and not person.static and time_s - person.first_s >= self.w.static_s:
                person.static = True
        if bodies is not None:
            self._follow_bodies(time_s, *bodies)
            self._attach_faces(time_s, boxes, track_ids)
        self._forget(time_s)

    def _follow_bodies(self, time_s, boxes, ids):
        for box, tid in zip(np.asarray(boxes, float).reshape(-1, 4), ids):
            if tid < 0:
                continue
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            body = self.bodies.get(int(tid))
            if body is None:
                body = self.bodies[int(tid)] = Body(int(tid), time_s, time_s, box, centre.copy(), centre.copy())
            body.last_s, body.box = time_s, box
            body.lo, body.hi = np.minimum(body.lo, centre), np.maximum(body.hi, centre)
            body.widths = (body.widths + [box[2] - box[0]])[-50:]
            if (body.hi - body.lo).max() >= self.w.body_move_frac * np.median(body.widths) \
                    and time_s - body.first_s >= self.w.body_min_s:
                body.walked = True

    def _attach_faces(self, time_s, boxes, track_ids):
        """Each tracked face joins the smallest body seen now whose upper part holds its centre."""
        here = [b for b in self.bodies.values() if b.last_s == time_s]
        for box, tid in zip(np.asarray(boxes, float).reshape(-1, 4), track_ids):
            if tid < 0 or not here:
                continue
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            holders = [b for b in here if b.box[0] <= cx <= b.box[2]
                       and b.box[1] <= cy <= b.box[1] + self.w.body_head * (b.box[3] - b.box[1])]
            if holders:
                body = min(holders, key=lambda b: (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))
                body.faces.add(int(tid))
        for body in here:
            if body.face_id is None:
                body.face_id = next((t for t in sorted(body.faces) if t in self.tracks and self.tracks[t].is_person),
                                    None)

    def _observe(self, person, time_s, box, prob, p, frame, likeness=1.0):
        size = float(min(box[2] - box[0], box[3] - box[1]))
        previous_s = person.last_s
        self._vote(person, time_s - previous_s, size, prob, p, likeness)
        person.last_s, person.last_box = time_s, box
        self._follow(person, time_s - previous_s, box, size, frame)
        person.state = self._decide(person)
        if self.zone is not None and not person.heading_out:
            person.heading_out = self.zone.heading_out(person.first_centre, person.centre)
        if frame is not None and size * prob > person.best_quality:
            person.best_quality, person.best_crop = size * prob, face_crop(frame, box)

    def _vote(self, person, dt, size, prob, p, likeness=1.0):
        fade = 0.5 ** (dt / self.w.likeness_half_life_s)
        person.likeness, person.likeness_n = person.likeness * fade + likeness, person.likeness_n * fade + 1
        fade = 0.5 ** (dt / self.w.half_life_s)
        weight = float(vote_weight(size, prob, p, self.w, likeness))
        person.for_mask = person.for_mask * fade + (weight if p >= self.threshold else 0.0)
        person.against = person.against * fade + (0.0 if p >= self.threshold else weight)
        person.votes += 1
        person.evidence += weight

    def _follow(self, person, dt, box, size, frame):
        """Where the face has been and how its pixels change: is it a person (moved) yet?"""
        person.sizes = (person.sizes + [size])[-50:]
        centre = person.centre
        person.lo, person.hi = np.minimum(person.lo, centre), np.maximum(person.hi, centre)
        if frame is not None and len(self.greys) == self.greys.maxlen:
            mix = 1 - np.exp(-dt / self.w.live_fade_s) if dt > 0 else 1.0
            person.change += mix * (box_change(self.greys[0], self.greys[-1], box) - person.change)
        walked = (person.hi - person.lo).max() >= self.w.move_frac * np.median(person.sizes)
        alive = walked or person.change >= self.w.live_level
        if alive and not person.static and person.votes >= self.w.min_votes:
            person.moved = True

    def _decide(self, person):
        if person.evidence < self.w.min_evidence:
            return person.state
        if person.state != UNKNOWN and person.for_mask + person.against < self.w.min_evidence / 2:
            return person.state
        share = person.share
        if share >= self.w.decide_share:
            return PROTECTED
        if share <= 1 - self.w.decide_share and person.likeness >= self.w.min_likeness * person.likeness_n:
            return UNPROTECTED
        return person.state

    def _forget(self, time_s):
        """Tracks unseen for long are gone for good (ByteTrack gives a returning face a new id)."""
        forget_s = max(10.0, 5 * self.w.lost_s)
        gone = [tid for tid, p in self.tracks.items() if time_s - p.last_s > forget_s]
        for tid in gone:
            person = self.tracks.pop(tid)
            if person.is_person:
                self.left[person.state] += 1
        for tid in [tid for tid, b in self.bodies.items() if time_s - b.last_s > forget_s]:
            if self._is_faceless(self.bodies.pop(tid)):
                self.left[UNKNOWN] += 1

    def _is_faceless(self, body):
        return body.walked and not body.has_face

    def faceless(self):
        """Bodies in view that count as people of their own (walked in, no counted face on them)."""
        return [b for b in self.bodies.values() if self._is_faceless(b) and self.now - b.last_s <= self.w.lost_s]

    def bodies_in_view(self):
        """Bodies seen now that are people: on their own (faceless) or through their face track (face_id)."""
        return [b for b in self.bodies.values() if b.last_s == self.now and (b.walked or b.has_face)]

    def in_view(self):
        return [p for p in self.tracks.values() if p.is_person and self.now - p.last_s <= self.w.lost_s]

    def seen(self):
        """People ever counted, by their last state (what the summary table shows)."""
        states = dict(self.left)
        for person in self.tracks.values():
            if person.is_person:
                states[person.state] += 1
        states[UNKNOWN] += sum(map(self._is_faceless, self.bodies.values()))
        return states

    def counts(self):
        people = self.in_view()
        states = [p.state for p in people]
        faceless = len(self.faceless())
        return {"in_view": len(people) + faceless, "protected": states.count(PROTECTED),
                "unprotected": states.count(UNPROTECTED), "unknown": states.count(UNKNOWN) + faceless,
                "seen": sum(self.seen().values())}

    def get(self, track_id):
        return self.tracks.get(int(track_id))


def box_change(before, after, box):
    """Mean absolute grey-level difference inside `box` between two frames."""
    h, w = after.shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float(cv2.absdiff(before[y1:y2, x1:x2], after[y1:y2, x1:x2]).mean())


def face_crop(frame, box, pad=0.25):
    """The face with `pad` of its size around it (a copy: the frame is drawn on later)."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    dx, dy = pad * (x2 - x1), pad * (y2 - y1)
    x1, y1 = int(max(0, x1 - dx)), int(max(0, y1 - dy))
    x2, y2 = int(min(w, x2 + dx)), int(min(h, y2 + dy))
    return frame[y1:y2, x1:x2].copy() if x2 > x1 and y2 > y1 else None
