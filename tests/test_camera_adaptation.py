"""The camera-adaptation benchmark's labeled frames (benchmarks/camera_adaptation.py): frames cut from the camera's
footage by footages_to_frames.py, labeled as the Suite round trip gives them back, read by cctv.labels, frames
without faces included, and accepted by finetune_mtcnn.py once labeled faces are mixed in."""
import sys

import numpy as np
import pytest

from cctv.errors import UserError
from cctv.footage_eval import load_footage_labels


@pytest.fixture(scope="module")
def adaptation(repo_root):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import camera_adaptation

    return camera_adaptation


@pytest.fixture(scope="module")
def camera_frames(adaptation, shared_dir, tmp_path_factory):
    """Every 200th frame of the camera's footage, labeled and split at frame 900 (7 frames: a few seconds)."""
    return adaptation.build_camera_frames(
        shared_dir / "data/footage/one_by_one_people.mp4", adaptation.LABELS / "one_by_one_people.json",
        tmp_path_factory.mktemp("camera"), frames_per_extract=200, split_frame=900, pre_labels=False)


def test_sampled_footage_labels_keep_their_frame_numbers(repo_root):
    labels = load_footage_labels(repo_root / "benchmarks/data/footage_faces/one_by_one_people.json")
    assert labels.frames[:3] == [0, 10, 20] and labels.frames[-1] == 1390 and len(labels.frames) == 140
    assert any(labels.faces[70]) and not labels.faces[0]  # person 1 is in view at frame 70, nobody at 0


def test_heads_turned_away_are_no_faces_and_visible_faces_are_boxes(adaptation):
    boxes, classes = adaptation.visible_faces([{"x": 100, "y": 50, "size": 20, "id": 1, "mask": None},
                                               {"x": 40, "y": 30, "size": 10, "id": 2, "mask": True}])
    assert boxes.tolist() == [[35, 25, 45, 35]] and classes == ["protected"]


def test_camera_frames_are_labeled_frames_without_faces_that_the_readers_accept(adaptation, camera_frames,
                                                                                 shared_dir):
    from cctv.labels import load_labels

    train, held_out, counts = camera_frames
    assert counts["train"] == 5 and counts["held_out"] == 2  # frames 0..800 and 1000, 1200 (every 200th of 1394)
    for folder, n in ((train, 5), (held_out, 2)):
        labels = load_labels(folder)
        assert labels.report.format == "Suite labels beside images"
        assert len(labels.items) == n and not labels.report.skipped
        assert all(len(item.boxes) == 0 for item in labels.items)  # heads turned away: no face boxes
        assert {adaptation.frame_index(i.image_path) for i in labels.items} <= {0, 200, 400, 600, 800, 1000, 1200}
    assert not (shared_dir / "data/footage/frames").exists()  # nothing written beside the footage


def test_an_empty_yolo_label_is_a_frame_without_faces(tmp_path):
    import cv2

    from cctv.labels import load_labels

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images/empty.jpg"), np.zeros((40, 60, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "images/face.jpg"), np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "labels/empty.txt").write_text("")
    (tmp_path / "labels/face.txt").write_text("1 0.5 0.5 0.2 0.3\n")
    (tmp_path / "labels/classes.txt").write_text("nomask\nmask\n")
    items = {i.image_path.name: i for i in load_labels(tmp_path / "labels").items}
    assert len(items["empty.jpg"].boxes) == 0 and items["face.jpg"].classes == ["protected"]


def test_finetune_refuses_the_camera_alone_and_takes_it_with_face_photos(adaptation, camera_frames, shared_dir,
                                                                        tmp_path, monkeypatch):
    import shutil

    import cctv.finetune.run as finetune_run

    train = shutil.copytree(camera_frames[0], tmp_path / "train")
    with pytest.raises(UserError, match="no labeled faces"):
        finetune_run.run_finetune(labels_dir=str(train), mtcnn_model_output_path=str(tmp_path / "m.pt"))

    photo_train, photo_test = adaptation.face_photo_split(shared_dir)
    assert not {i.image_path.name for i in photo_train} & {i.image_path.name for i in photo_test}
    adaptation.add_face_photos(photo_train[:3], train)
    seen = {}

    def stop(detector, train_items, val_items, settings, progress):
        seen["train"], seen["val"] = train_items, val_items
        raise KeyboardInterrupt  # the labels passed every check; the training itself is not this test's

    monkeypatch.setattr(finetune_run, "finetune", stop)
    with pytest.raises(KeyboardInterrupt):
        finetune_run.run_finetune(labels_dir=str(train), mtcnn_model_output_path=str(tmp_path / "m.pt"))
    items = seen["train"] + seen["val"]
    assert len(items) == 8 and sum(len(i.boxes) == 0 for i in items) == 5
    assert sum(len(i.boxes) for i in items) == sum(len(i.boxes) for i in photo_train[:3])
