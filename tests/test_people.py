"""People: tracks through missed detections, one weighted decision per person, static faces set aside,
alerts once per person (and only for people heading out with an exit zone), and `--exit_zone` errors."""
import cv2
import numpy as np
import pytest

from cctv.alerts import PersonAlertMonitor
from cctv.errors import UserError
from cctv.exit_zone import parse_exit_zone
from cctv.people import PROTECTED, UNKNOWN, UNPROTECTED, People, PeopleSettings, face_likeness, vote_weight
from cctv.snapshots import SnapshotSaver
from cctv.tracking import FaceTracker
from cctv.video import read_frames

FPS = 10.0
H, W = 270, 480
RNG = np.random.default_rng(0)
WALL = RNG.integers(0, 255, (H, W, 3), dtype=np.uint8)  # a textured background that never changes


def box_at(cx, cy, size=24):
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def frame_with(faces):
    """The wall with a fresh random texture where each (box, live) face is live: a living face changes
    from frame to frame, a painted one does not."""
    frame = WALL.copy()
    for box, live in faces:
        x1, y1, x2, y2 = np.round(box).astype(int)
        if live:
            frame[y1:y2, x1:x2] = RNG.integers(0, 255, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    return frame


def feed(people, monitor, frames):
    """frames: per frame, a list of (track id, box, P(protected), live). Returns the alerts' track ids."""
    alerts = []
    for i, faces in enumerate(frames):
        boxes = np.array([f[1] for f in faces], np.float32).reshape(-1, 4)
        p = np.array([f[2] for f in faces], np.float32)
        ids = np.array([f[0] for f in faces], int)
        frame = frame_with([(f[1], f[3]) for f in faces])
        people.update(i / FPS, boxes, np.ones(len(faces)), p, ids, frame)
        event = monitor.update(i, i / FPS, len(faces), int((p >= 0.5).sum()), people) if monitor else None
        if event:
            alerts.append((i, list(event.track_ids)))
    return alerts


def walker(track_id, p, start=0, x0=60, step=6, y=120, live=True):
    """A person walking right along a row, with a constant P(protected)."""
    return lambda i: (track_id, box_at(x0 + step * (i - start), y), p, live) if i >= start else None


def frames_of(n, *people):
    return [[f for f in (person(i) for person in people) if f is not None] for i in range(n)]


def test_votes_weigh_size_detection_and_confidence():
    w = PeopleSettings()
    assert vote_weight(40, 1.0, 0.99) > vote_weight(16, 1.0, 0.99) > vote_weight(8, 1.0, 0.99) == 0
    assert vote_weight(40, 1.0, 0.99) > vote_weight(40, 0.6, 0.99)
    assert vote_weight(40, 1.0, 0.5) == 0  # the classifier can't tell: no vote
    assert vote_weight(w.full_px * 2, 1.0, 0.0) == pytest.approx(1.0)


def test_state_is_unknown_until_enough_evidence_then_decided():
    people = People(fps=FPS)
    feed(people, None, frames_of(1, walker(1, 0.05)))
    assert people.get(1).state == UNKNOWN  # one frame is not enough
    feed(people, None, frames_of(6, walker(1, 0.05)))
    assert people.get(1).state == UNPROTECTED


# ONet's 5 landmarks (eyes, nose, mouth corners) relative to the box centre, in box sizes
FACE_POINTS = np.array([[-0.2, -0.15], [0.2, -0.15], [0.0, 0.05], [-0.15, 0.25], [0.15, 0.25]])
BACK_OF_HEAD_POINTS = np.array([[-0.17, -0.2], [0.17, -0.2], [0.0, 0.17], [-0.12, 0.2], [0.12, 0.2]])


def points_in(box, layout):
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]) + layout * (x2 - x1)


def walk_with_points(people, layout, p_protected, det_prob=0.8, frames=40):
    monitor, alerts = PersonAlertMonitor(), []
    for i in range(frames):
        box = box_at(60 + 6 * i, 120, size=40)
        people.update(i / FPS, np.array([box], np.float32), [det_prob], [p_protected], [1],
                      frame_with([(box, True)]), np.array([points_in(box, layout)]))
        if monitor.update(i, i / FPS, 1, int(p_protected >= 0.5), people):
            alerts.append(i)
    return alerts


def test_landmarks_of_a_back_of_a_head_are_not_a_face_unless_mtcnn_is_sure():
    box = box_at(100, 100, 40)
    face, back = points_in(box, FACE_POINTS)[None], points_in(box, BACK_OF_HEAD_POINTS)[None]
    assert face_likeness(face, [0.8]) == 1.0 and face_likeness(back, [0.8]) == 0.0
    assert face_likeness(back, [0.99]) == 1.0  # a bowed head that MTCNN is sure of
    upside_down = face.copy()
    upside_down[:, :, 1] *= -1
    assert face_likeness(upside_down, [0.8]) == 0.0


def test_a_back_of_a_head_called_unprotected_stays_unknown_and_raises_no_alert():
    people = People(fps=FPS)
    assert walk_with_points(people, BACK_OF_HEAD_POINTS, 0.05) == []
    assert people.get(1).state == UNKNOWN and people.get(1).is_person  # counted, not known
    people = People(fps=FPS)
    assert len(walk_with_points(people, FACE_POINTS, 0.05)) == 1  # the same votes on a face: an alert
    assert people.get(1).state == UNPROTECTED


def test_a_masked_face_needs_no_face_like_landmarks():
    """A mask hides the nose and mouth that the landmarks would place: protected votes count as they are."""
    people = People(fps=FPS)
    walk_with_points(people, BACK_OF_HEAD_POINTS, 0.95)
    assert people.get(1).state == PROTECTED


def test_backs_of_heads_on_real_footage_are_told_from_real_faces(shared_dir):
    """MTCNN on one_by_one_people.mp4 frame 340 finds the back of a head (probability 0.78); on
    four_people_masking.mp4 it finds the four people's faces: only the faces look like faces."""
    from mtcnn import MTCNN

    def frame(name, index):  # as the job decodes it
        return next(read_frames(shared_dir / "data" / "footage" / name, index, index + 1))

    mtcnn = MTCNN(keep_all=True, select_largest=False)
    boxes, probs, points = mtcnn.detect(frame("one_by_one_people.mp4", 340), landmarks=True)
    assert len(boxes) == 1 and probs[0] < PeopleSettings().sure_prob
    assert face_likeness(points, probs)[0] == 0.0
    boxes, probs, points = mtcnn.detect(frame("four_people_masking.mp4", 0), landmarks=True)
    assert len(boxes) >= 4
    assert (face_likeness(points, np.zeros(len(probs))) > 0.5).sum() >= 4  # by the landmarks alone


def test_a_person_who_puts_a_mask_on_changes_state_after_enough_evidence():
    people = People(fps=FPS)
    masked_from = 20
    states = []
    for i, faces in enumerate(frames_of(60, walker(1, 0.05, step=2))):
        if i >= masked_from:
            faces = [(tid, box, 0.95, live) for tid, box, _, live in faces]
        feed_one(people, i, faces)
        states.append(people.get(1).state)
    assert states[masked_from - 1] == UNPROTECTED
    assert states[masked_from] == UNPROTECTED  # one masked frame does not flip a decided person
    flipped = states.index(PROTECTED)
    assert masked_from < flipped <= masked_from + 2 * FPS and set(states[flipped:]) == {PROTECTED}


def feed_one(people, i, faces):
    boxes = np.array([f[1] for f in faces], np.float32).reshape(-1, 4)
    people.update(i / FPS, boxes, np.ones(len(faces)), np.array([f[2] for f in faces]),
                  np.array([f[0] for f in faces]), frame_with([(f[1], f[3]) for f in faces]))


def test_a_face_that_never_changes_is_static_and_not_a_person():
    people = People(fps=FPS)
    painting = lambda i: (9, box_at(300, 60, 26), 0.1, False)  # noqa: E731 - unmasked, never moves
    feed(people, None, frames_of(int(5 * FPS), painting, walker(1, 0.9, step=1)))
    assert people.get(9).static and not people.get(9).is_person
    assert [p.track_id for p in people.in_view()] == [1]
    assert people.counts() == {"in_view": 1, "protected": 1, "unprotected": 0, "unknown": 0, "seen": 1}


def test_a_standing_person_whose_face_changes_is_a_person():
    people = People(fps=FPS)
    standing = lambda i: (2, box_at(200, 100, 40), 0.05, True)  # noqa: E731 - same box, living pixels
    feed(people, None, frames_of(int(5 * FPS), standing))
    assert people.get(2).is_person and people.get(2).state == UNPROTECTED


def test_alert_names_the_unprotected_person_once_while_in_view():
    people, monitor = People(fps=FPS), PersonAlertMonitor(threshold=0.75)
    alerts = feed(people, monitor, frames_of(40, walker(1, 0.05, step=3)))
    assert len(alerts) == 1 and alerts[0][1] == [1] and alerts[0][0] < 10
    # a second unmasked person arriving later is named in an alert of their own
    people, monitor = People(fps=FPS), PersonAlertMonitor(threshold=0.75)
    alerts = feed(people, monitor, frames_of(40, walker(1, 0.05, step=3), walker(2, 0.05, start=20, y=200)))
    assert [ids for _, ids in alerts] == [[1], [2]]


def test_ratio_is_over_decided_people():
    # four masked people and one unmasked: 4/5 = 0.8 is not under 0.75; two unmasked: 3/5 is
    masked = [walker(i, 0.97, y=30 + 45 * i) for i in range(1, 5)]
    people, monitor = People(fps=FPS), PersonAlertMonitor(threshold=0.75)
    assert feed(people, monitor, frames_of(30, *masked, walker(5, 0.02, y=250))) == []
    people, monitor = People(fps=FPS), PersonAlertMonitor(threshold=0.75)
    masked[0] = walker(1, 0.02, y=75)
    alerts = feed(people, monitor, frames_of(30, *masked, walker(5, 0.02, y=250)))
    assert sorted(sum((ids for _, ids in alerts), [])) == [1, 5]


def test_people_not_yet_known_raise_no_alert():
    people, monitor = People(fps=FPS), PersonAlertMonitor(threshold=0.75)
    assert feed(people, monitor, frames_of(40, walker(1, 0.5, step=3))) == []  # the classifier can't tell
    assert people.get(1).state == UNKNOWN and people.counts()["unknown"] == 1


def test_exit_zone_limits_alerts_to_people_heading_out():
    zone = parse_exit_zone("300,0,480,0,480,270,300,270")  # the right part of the frame is the exit
    people, monitor = People(fps=FPS, zone=zone), PersonAlertMonitor(threshold=0.75)
    # one unmasked person walks right (reaches x=300 at frame 40), another stays on the left
    alerts = feed(people, monitor, frames_of(60, walker(1, 0.05, x0=60, step=6), walker(2, 0.05, x0=40, step=1,
                                                                                         y=220)))
    assert [ids for _, ids in alerts] == [[1]] and 38 <= alerts[0][0] <= 42


def test_exit_line_counts_crossing_to_its_exit_side_only():
    line = parse_exit_zone("250,0,250,270")  # walking down the line: the exit side is to the left (x < 250)
    assert line.is_line
    assert line.heading_out((300, 100), (200, 100)) and not line.heading_out((200, 100), (300, 100))
    assert not line.heading_out((300, 100), (260, 100))


@pytest.mark.parametrize("spec, problem", [
    ("1,2,3", "needs pairs of x,y"),
    ("10,10", "needs pairs of x,y"),
    ("a,b,c,d", "give pixel coordinates"),
    ("5,5,5,5", "the line's two points are the same"),
    ("0,0,10,10,20,20", "the polygon has no area"),
    ("-1,0,10,10", "0 or more"),
])
def test_malformed_exit_zone_is_a_user_error(spec, problem):
    with pytest.raises(UserError, match=problem):
        parse_exit_zone(spec)


def test_exit_zone_outside_the_frame_is_a_user_error():
    with pytest.raises(UserError, match="outside the 480x270 frame"):
        parse_exit_zone("0,0,500,300", 480, 270)


def test_tracks_survive_missed_detections_of_small_fast_faces():
    """18 px faces moving 10 px a frame at 7 fps (little overlap between frames), detected in 2 frames of 3."""
    tracker = FaceTracker(7.0)
    ids = []
    for i in range(30):
        if i % 3 == 2:
            tracker.update(np.zeros((0, 4)), np.zeros(0))
            continue
        ids.append(int(tracker.update([box_at(40 + 10 * i, 100, 18)], [0.95])[0]))
    assert ids[0] == -1 and len(set(ids[1:])) == 1 and ids[1] >= 1  # one id from the 2nd detection on


def test_tracks_keep_their_ids_when_paths_cross():
    tracker = FaceTracker(10.0)
    history = {}
    for i in range(40):
        a, b = box_at(60 + 8 * i, 100, 30), box_at(372 - 8 * i, 120, 30)  # they pass each other at frame 19
        ids = tracker.update([a, b], [0.99, 0.99])
        history.setdefault("a", []).append(int(ids[0]))
        history.setdefault("b", []).append(int(ids[1]))
    assert len(set(history["a"][2:])) == 1 and len(set(history["b"][2:])) == 1
    assert history["a"][-1] != history["b"][-1]


def test_weak_faces_keep_a_track_but_never_start_one():
    tracker = FaceTracker(10.0, high_prob=0.6)
    assert all(tracker.update([box_at(100 + 5 * i, 100)], [0.3])[0] == -1 for i in range(5))
    ids = [int(tracker.update([box_at(200 + 5 * i, 100)], [0.9 if i < 3 else 0.3])[0]) for i in range(10)]
    assert ids[0] == -1 and len(set(ids[1:])) == 1  # the weak boxes from frame 3 on still carry the id



def test_snapshots_are_the_frame_with_the_people_boxed_and_their_best_crops(tmp_path):
    people = People(fps=FPS)
    feed(people, None, frames_of(8, walker(3, 0.05)))
    frame = frame_with([])
    saver = SnapshotSaver(tmp_path / "out.mp4.snapshots", tmp_path)
    paths = saver.save(2, 8, frame, [people.get(3)])
    assert paths == ["out.mp4.snapshots/alert0002-frame00008.jpg", "out.mp4.snapshots/alert0002-track3-face.jpg"]
    shot, crop = (cv2.imread(str(tmp_path / p)) for p in paths)
    assert shot.shape == frame.shape and (frame == WALL).all()  # drawn on a copy: the video's frame is untouched
    assert min(crop.shape[:2]) >= 96  # a 24 px face, scaled up to be looked at
    assert sorted(p.name for p in (tmp_path / "out.mp4.snapshots").iterdir()) == [p.split("/")[1] for p in paths]
