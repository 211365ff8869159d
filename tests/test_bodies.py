"""People by their bodies: a person who walks in and stands still keeps one body track, counts as a person
not known when no face is seen, and counts once when their face is seen on it; the real clip of six people
with their backs to the camera gives six body people."""
import json
from pathlib import Path

import numpy as np
from cctv.bodies import BodyTracker
from cctv.people import UNKNOWN, UNPROTECTED, People
from cctv.video import open_source

FPS = 10.0
H, W = 216, 384
FLOOR = np.full((H, W, 3), 200, np.uint8)
FLOOR[H // 2:] = 120  # a wall above a darker floor


def person_at(frame, x, y_feet, height=150, width=40):
    """A dark standing figure (a lighter head) whose feet are at (x, y_feet)."""
    top = y_feet - height
    frame[max(0, top + 30):y_feet, x - width // 2:x + width // 2] = 30
    frame[max(0, top):top + 30, x - 12:x + 12] = 60
    return (x - 12, top, x + 12, top + 30)  # the head's box


def walk_in_and_stand(frames_standing):
    """An empty second, then the figure walks in from the bottom to the wall and stands still: (frame, head box)
    per frame."""
    for _ in range(10):
        yield FLOOR.copy(), None
    for i in range(40):
        frame = FLOOR.copy()
        yield frame, person_at(frame, 190, H + 60 - 3 * i)
    for _ in range(frames_standing):
        frame = FLOOR.copy()
        yield frame, person_at(frame, 190, H + 60 - 3 * 39)


def feed(people, tracker, frames, face=None):
    """face(i, head box) -> (box, P(protected)) or None, for each frame."""
    ids = set()
    for i, (frame, head) in enumerate(frames):
        boxes, body_ids = tracker.update(frame)
        ids.update(int(t) for t in body_ids if t >= 0)
        seen = face(i, head) if face else None
        f_boxes = np.array([seen[0]], np.float32) if seen else np.zeros((0, 4), np.float32)
        p = np.array([seen[1]] if seen else [], np.float32)
        track_ids = np.array([7] if seen else [], int)
        people.update(i / FPS, f_boxes, np.ones(len(p)), p, track_ids, frame, bodies=(boxes, body_ids))
    return ids


def test_a_person_standing_still_for_30_seconds_keeps_one_body_track_and_counts_as_not_known():
    tracker, people = BodyTracker(FPS), People(fps=FPS)
    ids = feed(people, tracker, walk_in_and_stand(300))
    assert len(ids) == 1  # never faded into the background, never cut in two
    assert people.counts()["in_view"] == 1 and people.counts()["unknown"] == 1
    assert people.seen() == {"protected": 0, "unprotected": 0, UNKNOWN: 1}
    assert people.in_view() == []  # a body alone has no state: it can never be in an alert


def test_an_empty_scene_and_a_still_one_give_no_body():
    tracker, people = BodyTracker(FPS), People(fps=FPS)
    assert feed(people, tracker, ((FLOOR.copy(), None) for _ in range(50))) == set()
    assert sum(people.seen().values()) == 0


def test_something_put_down_that_never_walks_is_not_a_person():
    """A chair moved in (or a ghost where furniture was) is foreground for long, but it never travels."""
    tracker, people = BodyTracker(FPS), People(fps=FPS)

    def chair():
        for i in range(200):
            frame = FLOOR.copy()
            if i >= 10:
                frame[120:190, 100:160] = 40
            yield frame, None

    assert len(feed(people, tracker, chair())) == 1
    assert sum(people.seen().values()) == 0 and people.counts()["in_view"] == 0


def test_a_face_seen_on_the_body_makes_one_person_whose_face_decides():
    tracker, people = BodyTracker(FPS), People(fps=FPS)

    def face(i, head):  # the face shows while walking in (then the person turns their back)
        if head and i < 50:
            x1, y1, x2, y2 = head
            return (x1 + i % 3, y1, x2 + i % 3, y2), 0.02  # an unmasked face, moving a little
        return None

    feed(people, tracker, walk_in_and_stand(60), face)
    assert people.seen() == {"protected": 0, UNPROTECTED: 1, UNKNOWN: 0}  # not also a body person
    assert people.faceless() == []


def test_six_people_with_their_backs_to_the_camera_are_six_body_tracks(shared_dir):
    """one_by_one_people.mp4: each labelled person is covered by one body track that walked in, and no body
    track walks without a person."""
    labels = json.loads((Path(__file__).parents[1] / "benchmarks" / "data" / "footage_faces" /
                         "one_by_one_people.json").read_text())
    source = open_source(shared_dir / "data" / "footage" / "one_by_one_people.mp4")  # frames as the job decodes them
    fps = float(source.info.fps)
    tracker, people = BodyTracker(fps), People(fps=fps)
    owners, walked = {}, set()  # body track id -> labelled people whose head it held; bodies that walked in
    for i, image in enumerate(source):
        boxes, ids = tracker.update(image)
        people.update(i / fps, np.zeros((0, 4)), [], [], [], image, bodies=(boxes, ids))
        walked.update(tid for tid, body in people.bodies.items() if body.walked)
        for lab in labels["frames"].get(str(i), []):
            for (x1, y1, x2, y2), tid in zip(boxes, ids):
                if tid >= 0 and x1 - 40 <= lab["x"] <= x2 + 40 and y1 - 40 <= lab["y"] <= y1 + 0.5 * (y2 - y1):
                    owners.setdefault(int(tid), set()).add(lab["id"])
    source.close()
    assert people.seen()[UNKNOWN] == labels["people"] == 6
    assert all(len(owners.get(tid, ())) == 1 for tid in walked)  # each one person's
    assert {next(iter(owners[tid])) for tid in walked} == set(range(1, 7))
