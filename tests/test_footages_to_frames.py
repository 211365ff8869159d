"""footages_to_frames.py on the real footage in ../shared: every N-th frame, named by its index in the
footage; non-video files skipped with a note; re-runs add nothing; pre-labels in the form spb uploads."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import footages_to_frames
from cctv.errors import UserError
from cctv.labels import load_labels
from cctv.video import open_source


@pytest.fixture()
def footage_dir(shared_dir, tmp_path):
    """A footage folder like a camera's export: the real GIF, plus a .DS_Store and a broken video."""
    folder = tmp_path / "footages"
    folder.mkdir()
    os.symlink(shared_dir / "data" / "footage" / "channy_in.gif", folder / "channy_in.gif")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    return folder


def decoded_frames(path):
    source = open_source(path)
    try:
        return list(source)
    finally:
        source.close()


def test_every_nth_frame_named_by_its_index_and_reruns_add_nothing(footage_dir, tmp_path, capsys):
    out = tmp_path / "frames"
    results = footages_to_frames.run(footage_dir=footage_dir, output_dir=out, frames_per_extract=6)
    frames = decoded_frames(footage_dir / "channy_in.gif")
    expected = [f"channy_in-frame{i}.jpg" for i in range(0, len(frames), 6)]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name in expected:
        index = int(name.rsplit("frame", 1)[1].split(".")[0])
        jpg = np.asarray(Image.open(out / name).convert("RGB"), np.float32)
        assert jpg.shape == frames[index].shape
        errors = [np.abs(jpg - frame).mean() for frame in frames]
        assert int(np.argmin(errors)) == index and errors[index] < 5  # that very frame, through JPEG q95
    printed = capsys.readouterr()
    assert "skipped" in printed.err and ".DS_Store: not a video file" in printed.err
    assert "broken.mp4: not a readable video" in printed.err
    assert "total" in printed.out and "channy_in.gif" in printed.out
    gif = next(r for r in results if r.name == "channy_in.gif")
    assert (gif.decoded, gif.written, gif.existing) == (len(frames), len(expected), 0)

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = footages_to_frames.run(footage_dir=footage_dir, output_dir=out, frames_per_extract=6)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    gif = next(r for r in again if r.name == "channy_in.gif")
    assert (gif.written, gif.existing) == (0, len(expected))


def test_mp4_footage(shared_dir, tmp_path):
    folder = tmp_path / "footages"
    folder.mkdir()
    os.symlink(shared_dir / "data" / "footage" / "four_people_masking.mp4", folder / "four_people_masking.mp4")
    results = footages_to_frames.run(footage_dir=folder, output_dir=tmp_path / "frames", frames_per_extract=100)
    decoded = results[0].decoded
    assert decoded > 300
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == sorted(f"four_people_masking-frame{i}.jpg" for i in range(0, decoded, 100))
    assert Image.open(tmp_path / "frames" / names[0]).size == (960, 506)


@pytest.mark.parametrize("args, message", [
    (["--footage_dir", "no/such/dir", "--output_dir", "out"], "no/such/dir: no such footage folder"),
    (["--footage_dir", ".", "--output_dir", "out", "--frames_per_extract", "0"], "--frames_per_extract must be 1 or more, got 0"),
])
def test_bad_arguments_give_one_error_line(repo_root, tmp_path, args, message):
    run = subprocess.run([sys.executable, str(repo_root / "footages_to_frames.py"), *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "out").exists()


def test_folder_without_video_is_an_error(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"x")
    with pytest.raises(UserError, match=rf"{tmp_path}: no video files"):
        footages_to_frames.run(footage_dir=tmp_path, output_dir=tmp_path / "out")


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    """An untrained classifier checkpoint: pre-labels need one, and models/detector.pt is trained elsewhere."""
    import torch

    from cctv.classifier import MaskClassifier, build_network, save_classifier

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "detector.pt"
    save_classifier(MaskClassifier(build_network("writeup"), "writeup"), path)
    return path


def test_pre_labels_hold_our_detections_in_the_suite_form(footage_dir, tmp_path, shared_dir, classifier_path):
    from mtcnn import MTCNN

    from cctv.classifier import load_classifier

    project_json = shared_dir / "data" / "suite_exports" / "facemask853_spb_download" / "project.json"
    out = tmp_path / "frames"
    footages_to_frames.run(footage_dir=footage_dir, output_dir=out, frames_per_extract=10, pre_labels=True,
                           detector_model_path=classifier_path, project_json=project_json)
    labels = sorted(out.glob("*.jpg.json"))
    assert [p.name for p in labels] == sorted(p.name + ".json" for p in out.glob("*.jpg"))

    detector = MTCNN(**load_classifier(classifier_path).mtcnn_settings, keep_all=True, select_largest=False)
    frames = decoded_frames(footage_dir / "channy_in.gif")
    ls = load_labels(out)
    assert ls.report.read == len(labels) and not ls.report.skipped
    found = 0
    for item in ls.items:
        index = int(item.key.rsplit("frame", 1)[1].split(".")[0])
        boxes, _ = detector.detect(frames[index])
        np.testing.assert_allclose(item.boxes, np.clip(np.reshape(boxes, (-1, 4)), 0, [480, 270, 480, 270]), atol=1e-3)
        assert set(item.classes) <= {"protected", "unprotected"}
        found += len(item.boxes)
    assert found > 0  # MTCNN finds the masked face in some channy_in frames

    ids = {c["id"] for c in json.loads(project_json.read_text())["object_detection"]["object_classes"]}
    for path in labels:
        for obj in json.loads(path.read_text())["result"]["objects"]:
            assert obj["class_id"] in ids and obj["annotation_type"] == "box"

    # a re-run keeps the labels a person may already have corrected
    labels[0].write_text(labels[0].read_text().replace('"protected"', '"protected" ', 1))
    edited = labels[0].read_text()
    footages_to_frames.run(footage_dir=footage_dir, output_dir=out, frames_per_extract=10, pre_labels=True,
                           detector_model_path=classifier_path, project_json=project_json)
    assert labels[0].read_text() == edited
