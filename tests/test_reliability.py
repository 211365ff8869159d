"""Faults and hostile inputs (issue #15): stop signals and SIGKILL during the main job, disk full while the
video is written, an output that is the footage itself, truncated footage. Signals are sent to a real run;
disk full is a real full file system (a tiny tmpfs where root can mount one) or a file size limit."""
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest

from cctv.alerts import read_events
from cctv.errors import UserError
from cctv.video import VideoWriteError, VideoWriter, open_source, partial_path, probe_video

ROOT = Path(__file__).resolve().parents[1]
FPS = 25  # four_people_masking.mp4


def decodable_frames(path):
    """Frames decodable from the start of a video, tolerating a torn last fragment (as a player does)."""
    n = 0
    with av.open(str(path)) as container:
        try:
            for _ in container.decode(video=0):
                n += 1
        except av.FFmpegError:
            pass
    return n


def job_command(footage, out, detector_model, *extra):
    return [sys.executable, "cctv_mask_detector.py", "--footage_path", str(footage), "--output_path", str(out),
            "--detector_model_path", detector_model, "--no_voice", "--batch_size", "2", "--threads", "2", *extra]


def start_and_wait_for(cmd, frames, **popen):
    """Start the job; return (process, stderr chunks, reader thread) once its progress bar shows `frames`."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    stderr, progressed = [], threading.Event()

    def read_stderr():
        for chunk in iter(lambda: proc.stderr.read(64), ""):
            stderr.append(chunk)
            counts = [int(n) for n in re.findall(r"\b(\d+)/\d+\b", "".join(stderr[-40:]))]
            if counts and max(counts) >= frames:
                progressed.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    if not progressed.wait(180):
        proc.kill()
        pytest.fail("the job did not progress: " + "".join(stderr))
    return proc, stderr, reader


# ---------------------------------------------------------------- 1. stop signals and SIGKILL

@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)])
def test_sigterm_and_sighup_close_the_video_like_ctrl_c(tmp_path, detector_model, four_people, signum):
    out = tmp_path / "stopped.mp4"
    proc, stderr, reader = start_and_wait_for(job_command(four_people, out, detector_model), 6)
    proc.send_signal(signum)
    proc.wait(60)
    reader.join(5)
    err = "".join(stderr)
    assert proc.returncode == 128 + signum and "interrupted" in err and "Traceback" not in err, err
    count, fps = probe_video(out)[:2]
    assert 6 <= count < 414 and fps == FPS
    left = {p.name for p in tmp_path.iterdir()} - {"stopped.mp4.snapshots"}  # there if an alert came first
    assert left == {"stopped.mp4", "stopped.mp4.events.jsonl", "stopped.mp4.timeline.jsonl",
                    "stopped.mp4.run.json"}  # no partial or temporary file


@pytest.mark.slow
def test_sigkill_leaves_a_playable_partial_video_that_the_next_run_names(tmp_path, detector_model, four_people):
    out = tmp_path / "killed.mp4"
    out.write_bytes(b"the previous run's video")
    proc, stderr, reader = start_and_wait_for(job_command(four_people, out, detector_model), 2 * FPS + 10)
    proc.kill()
    proc.wait(30)
    reader.join(5)
    partial = partial_path(out)
    assert out.read_bytes() == b"the previous run's video"  # never replaced by an unfinished video
    assert partial.is_file() and decodable_frames(partial) >= 10  # the first whole second(s) play
    events_before = read_events(f"{out}.events.jsonl")
    assert events_before  # the first seconds hold alerts

    result = subprocess.run(job_command(four_people, out, detector_model, "--max_frames", "4", "--quiet"),
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    recovered = sorted(tmp_path.glob("killed.incomplete-*.mp4"))
    assert len(recovered) == 1 and str(recovered[0]) in result.stderr, result.stderr
    assert decodable_frames(recovered[0]) >= 10
    events_after = read_events(f"{recovered[0]}.events.jsonl")  # its alerts and snapshots went with it
    moved = f"{recovered[0].name}.snapshots/"
    assert [{**e, "snapshots": []} for e in events_after] == [{**e, "snapshots": []} for e in events_before]
    for event in events_after:
        assert event["snapshots"] and all(p.startswith(moved) and (tmp_path / p).is_file() for p in event["snapshots"])
    assert probe_video(out)[0] == 4 and not partial.exists()


def test_a_second_writer_of_the_same_output_is_refused(tmp_path):
    out = tmp_path / "busy.mp4"
    with VideoWriter(out, 64, 48, 25) as first:
        first.write(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(UserError, match="another run is writing"):
            VideoWriter(out, 64, 48, 25)
    assert probe_video(out)[0] == 1


# ---------------------------------------------------------------- 2. disk full

def _fill_until_error(writer, limit=2000):
    rng = np.random.default_rng(0)
    for _ in range(limit):  # noise does not compress: the disk fills within a few hundred frames
        writer.write(rng.integers(0, 255, (240, 320, 3), np.uint8))
    pytest.fail("the disk never filled")


def test_disk_full_keeps_the_previous_video(tiny_disk):
    disk = tiny_disk("3m")  # a real full file system (conftest; skipped where a tmpfs can't be mounted)
    out = disk / "out.mp4"
    with VideoWriter(out, 64, 48, 25) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    previous = out.read_bytes()
    writer = VideoWriter(out, 320, 240, 25)
    with pytest.raises(VideoWriteError) as caught:
        try:
            _fill_until_error(writer)
        finally:
            writer.close()
    message = str(caught.value)
    assert "No space left" in message and "previous out.mp4 is kept" in message, message
    assert out.read_bytes() == previous and not partial_path(out).exists()
    kept = list(disk.glob("out.incomplete-*.mp4"))
    assert len(kept) == 1 and str(kept[0]) in message and decodable_frames(kept[0]) > 0


def _limit_file_size(size):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


@pytest.mark.slow
def test_the_job_stops_with_one_error_line_when_the_video_cannot_be_written(tmp_path, detector_model, four_people):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous run's video")
    # the first fragment (about 54 KB, 40 frames) fits, the second does not
    result = subprocess.run(job_command(four_people, out, detector_model, "--max_frames", "100"), cwd=ROOT,
                            capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size(100_000))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1 and "writing the video failed" in errors[0] and "previous out.mp4 is kept" in errors[0]
    assert out.read_bytes() == b"the previous run's video"
    kept = list(tmp_path.glob("out.incomplete-*.mp4"))
    assert not partial_path(out).exists() and len(kept) == 1 and decodable_frames(kept[0]) >= 10


# ---------------------------------------------------------------- 3. the output is the footage

@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "its partial file"])
def test_an_output_that_is_the_footage_is_refused(tmp_path, detector_model, four_people, how):
    footage = tmp_path / ("recording.mp4" if how != "its partial file" else ".out.partial.mp4")
    shutil.copyfile(four_people, footage)
    original = footage.read_bytes()
    out = {"same path": footage, "symlink": tmp_path / "link.mp4", "hard link": tmp_path / "hard.mp4",
           "its partial file": tmp_path / "out.mp4"}[how]
    if how == "symlink":
        out.symlink_to(footage)
    elif how == "hard link":
        os.link(footage, out)
    result = subprocess.run(job_command(footage, out, detector_model, "--max_frames", "4"), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert re.search(r"^error: .*is the footage itself", result.stderr, re.M), result.stderr
    assert footage.read_bytes() == original


def test_an_output_inside_the_footage_folder_is_refused(tmp_path, detector_model, four_people):
    folder = tmp_path / "footages"
    folder.mkdir()
    shutil.copyfile(four_people, folder / "a.mp4")
    result = subprocess.run(job_command(folder, folder / "annotated.mp4", detector_model, "--max_frames", "4"),
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "inside the footage folder" in result.stderr, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["a.mp4"]


# ---------------------------------------------------------------- 14. truncated footage

def test_a_truncated_video_says_it_ended_early_and_how_many_frames_were_read(tmp_path, four_people):
    cut = tmp_path / "cut.mp4"
    data = four_people.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    warnings = []
    source = open_source(cut, warn=warnings.append)
    read = sum(1 for _ in source)
    source.close()
    assert 0 < read < 414
    assert len(warnings) == 1 and f"read {read} of the 414 frames" in warnings[0] and "ended early" in warnings[0]


def test_a_whole_video_gives_no_warning(four_people):
    warnings = []
    source = open_source(four_people, warn=warnings.append)
    assert sum(1 for _ in source) == 414 and warnings == []
    source.close()


# ---------------------------------------------------------------- labels: a tiny YOLO / COCO export

def yolo_export(root, lines, names_file="classes.txt", names_text="nomask\nmask\n", size=(100, 80)):
    """root/images/a.jpg (size) + root/labels/a.txt (lines) + the class names file; returns root/labels."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    Image.new("RGB", size, (120, 100, 90)).save(root / "images" / "a.jpg")
    (root / "labels" / "a.txt").write_text("\n".join(lines) + "\n")
    (root / "labels" / names_file).write_text(names_text)
    return root / "labels"


def coco_export(root, bboxes, category="mask"):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    Image.new("RGB", (100, 80)).save(root / "images" / "a.jpg")
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
           "annotations": [{"id": i, "image_id": 1, "category_id": 1, "bbox": b} for i, b in enumerate(bboxes)],
           "categories": [{"id": 1, "name": category}]}
    (root / "coco.json").write_text(json.dumps(doc))
    return root / "coco.json"


def bomb_png(path, side=30000):
    """A tiny PNG whose header claims side x side pixels (PIL refuses over 2x its 89 MP limit)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data[12:29]  # b'IHDR' + 13 bytes
    ihdr[4:12] = struct.pack(">II", side, side)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------- 7. zip bombs

def test_a_zip_bomb_is_refused_before_extracting(tmp_path):
    from cctv.labels import load_labels

    archive = tmp_path / "labels.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export/a.jpg.json", "{}")
        with z.open("export/huge.json", "w") as member:  # 128 MiB of zeros: about 130 KB compressed
            for _ in range(128):
                member.write(bytes(1 << 20))
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(UserError, match=r"huge\.json' expands \d+x .*refusing"):
        load_labels(archive)


@pytest.mark.parametrize("limit, value, match", [("MAX_ZIP_BYTES", 10_000, "extracts to 19.5 KB, more than"),
                                                 ("MAX_ZIP_MEMBERS", 3, "5 members, more than 3")])
def test_zip_size_and_member_caps(tmp_path, monkeypatch, limit, value, match):
    from cctv.labels import load_labels, safepath

    monkeypatch.setattr(safepath, limit, value)
    archive = tmp_path / "labels.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(5):
            z.writestr(f"export/{i}.bin", os.urandom(4000))
    with pytest.raises(UserError, match=match):
        load_labels(archive)


# ---------------------------------------------------------------- 8. decompression bombs

def test_a_decompression_bomb_image_is_unreadable_not_a_traceback(tmp_path):
    from cctv.face_dataset import face_crops_from_files
    from cctv.images import load_image
    from cctv.labels import load_labels

    bomb = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(UserError, match="bomb.png: not a readable image"):
        load_image(bomb)
    # training and testing: skipped and counted with the other unreadable files
    good = tmp_path / "good.png"
    from PIL import Image
    Image.new("RGB", (40, 40), (200, 180, 160)).save(good)
    faces = face_crops_from_files([(bomb, 1), (good, 0)], cache_dir=tmp_path / "cache", progress=False)
    assert faces.unreadable == [str(bomb)] and len(faces) == 1
    # label loading: the label whose image is a bomb is skipped, under "unreadable image"
    labels = yolo_export(tmp_path / "export", ["1 0.5 0.5 0.2 0.2"])
    bomb_png(tmp_path / "export" / "images" / "b.png")
    (labels / "b.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    ls = load_labels(labels)
    assert [item.image_path.name for item in ls.items] == ["a.jpg"]
    assert [Path(f.split(" ")[0]).name for f in ls.report.skipped["unreadable image"]] == ["b.txt"]


def test_dataset_prep_counts_a_bomb_as_unreadable(tmp_path):
    from PIL import Image

    from cctv.mask_dataset_prep import run_prepare

    for name in ("with_mask", "without_mask"):
        (tmp_path / "src" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(tmp_path / "src" / name / "ok.png")
    bomb_png(tmp_path / "src" / "with_mask" / "bomb.png")
    report = run_prepare(source_path=tmp_path / "src", output_path=tmp_path / "out", train_per_class=1,
                         progress=False)
    assert [Path(f).name for f in report.unreadable] == ["bomb.png"]


# ---------------------------------------------------------------- 12. YOLO data.yaml

def test_data_yaml_with_a_non_number_key_is_one_error_naming_it(tmp_path):
    from cctv.labels import load_labels

    labels = yolo_export(tmp_path, ["1 0.5 0.5 0.2 0.2"], "data.yaml", "path: .\nnames:\n  0: nomask\n  one: mask\n")
    with pytest.raises(UserError, match=r"data\.yaml: `names:` entry 'one: mask' is not `<class number>: <name>`"):
        load_labels(labels)


@pytest.mark.parametrize("names_text", ["names:\n  0: nomask\n  2: mask\n", "names: {0: nomask, 2: mask}\n",
                                        "nc: 3\nnames: ['nomask', 'other', 'mask']  # three\n",
                                        "names:\n  - nomask\n  - other\n  - mask\ntrain: images\n"])
def test_data_yaml_class_numbers_are_kept(tmp_path, names_text):
    from cctv.labels import load_labels

    labels = yolo_export(tmp_path, ["2 0.5 0.5 0.2 0.2", "0 0.3 0.3 0.1 0.1"], "data.yaml", names_text)
    ls = load_labels(labels, class_map={"other": "ignore"})
    assert ls.items[0].classes == ["protected", "unprotected"]  # class 2 is 'mask' even with no class 1


# ---------------------------------------------------------------- 15. malformed boxes

@pytest.mark.parametrize("line", ["1 0.5 0.5 5 0.2", "1 0.5 0.5 -0.2 0.2", "1 0.5 0.5 0.2 -0.3", "1 1.7 0.5 0.2 0.2"])
def test_yolo_boxes_that_are_not_normalised_are_malformed_not_guessed(tmp_path, line):
    from cctv.labels import load_labels

    labels = yolo_export(tmp_path, [line])
    (labels / "b.txt").write_text("1 0.5 0.5 0.2 0.2\n")  # a good label beside it (its image is missing)
    with pytest.raises(UserError, match="malformed box") as caught:
        load_labels(labels)
    assert "a.txt" in str(caught.value)


def test_coco_negative_size_boxes_are_malformed_not_flipped(tmp_path):
    from cctv.labels import load_labels

    with pytest.raises(UserError, match="malformed box"):  # the image's only label is bad: nothing usable
        load_labels(coco_export(tmp_path / "neg", [[60, 40, -30, 20]]))
    good = load_labels(coco_export(tmp_path / "pos", [[30, 40, 30, 20]]))
    np.testing.assert_array_equal(good.items[0].boxes, [[30, 40, 60, 60]])


# ---------------------------------------------------------------- 13. --class_map wherever labels are read

def test_class_map_reaches_dataset_prep_and_training(tmp_path):
    from cctv.classifier import DEFAULT_MTCNN_SETTINGS
    from cctv.mask_dataset_prep import run_prepare
    from cctv.mask_training import load_training_faces

    labels = yolo_export(tmp_path / "export", ["0 0.3 0.5 0.3 0.5", "1 0.7 0.5 0.3 0.5"], names_text="bare\nhelmet\n",
                         size=(200, 100))
    with pytest.raises(UserError, match="unknown class 'bare'.*--class_map"):
        run_prepare(labels_dir=labels, output_path=tmp_path / "out", test_fraction=0, progress=False)
    report = run_prepare(labels_dir=labels, output_path=tmp_path / "out", test_fraction=0, progress=False,
                         class_map="helmet=protected,bare=unprotected")
    assert report.written["train", "protected"] == 1 and report.written["train", "unprotected"] == 1
    sets = load_training_faces([], labels_dir=labels, mtcnn_settings=dict(DEFAULT_MTCNN_SETTINGS), progress=False,
                               class_map="helmet=protected,bare=unprotected")
    assert sets[0].counts() == {"protected": 1, "unprotected": 1}


@pytest.mark.parametrize("script", ["prepare_mask_dataset", "train_mask_detector", "finetune_mtcnn"])
def test_every_script_reading_labels_offers_class_map(script):
    import importlib

    module = importlib.import_module(script)
    opt = module.parse_opt(["--labels_dir", "x", "--class_map", "helmet=protected"])
    assert opt.class_map == "helmet=protected"


def test_a_failed_alert_write_is_one_error_and_leaves_no_torn_line(tmp_path, monkeypatch):
    from cctv.alerts import AlertEvent, EventLog, read_events

    log = EventLog(tmp_path / "out.mp4.events.jsonl")
    log.write(AlertEvent(0.2, 5, 3, 0, 0.0))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))  # the disk fills mid-line
    with pytest.raises(UserError, match="out.mp4.events.jsonl: writing an alert failed"):
        log.write(AlertEvent(1.2, 30, 3, 1, 0.33))
    monkeypatch.undo()
    log.write(AlertEvent(2.2, 55, 3, 1, 0.33))
    log.close()
    assert [e["frame"] for e in read_events(log.path)] == [5, 55]


def test_footages_to_frames_says_which_footage_ended_early(tmp_path, four_people, capsys):
    import footages_to_frames

    folder = tmp_path / "footages"
    folder.mkdir()
    data = four_people.read_bytes()
    (folder / "cut.mp4").write_bytes(data[:len(data) // 2])
    results = footages_to_frames.run(str(folder), str(tmp_path / "frames"), frames_per_extract=100)
    err = capsys.readouterr().err
    assert re.search(rf"cut\.mp4: the file ended early: read {results[0].decoded} of the 414 frames", err), err


def test_every_script_stops_cleanly_on_sigterm(tmp_path, shared_dir):
    """cli_main turns SIGTERM into the Ctrl-C path for every script: cleanup runs, exit 143, no temp files."""
    import time

    frames = tmp_path / "frames"
    proc = subprocess.Popen([sys.executable, "footages_to_frames.py", "--footage_dir",
                             str(shared_dir / "data" / "footage"), "--output_dir", str(frames),
                             "--frames_per_extract", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while len(list(frames.glob("*.jpg"))) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "interrupted (SIGTERM)" in err and "Traceback" not in err, err
    assert not [p.name for p in frames.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_a_video_with_a_failed_write_is_never_published(tmp_path, monkeypatch):
    """A write that failed once leaves a gap, even if the disk has room again by the end."""
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous")
    writer = VideoWriter(out, 64, 48, 25)
    for _ in range(30):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    class FullDisk:  # the stream, with one write failing as on a full disk (PyAV's own objects can't be patched)
        def __init__(self, stream):
            self.stream = stream

        def encode(self, frame):
            raise OSError(28, "No space left on device")

    stream, writer.stream = writer.stream, FullDisk(writer.stream)
    with pytest.raises(VideoWriteError, match="No space left"):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.stream = stream  # the disk has room again
    with pytest.raises(VideoWriteError, match="previous out.mp4 is kept"):
        writer.close()
    assert out.read_bytes() == b"previous" and not partial_path(out).exists()
