"""Faults and hostile inputs (issue #15): stop signals and SIGKILL during the main job, disk full while the
video is written, an output that is the footage itself, truncated footage. Signals are sent to a real run;
disk full is a real full file system (a tiny tmpfs where root can mount one) or a file size limit."""
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from cctv.errors import UserError
from cctv.video import VideoWriteError, VideoWriter, open_source, partial_path, probe_video, read_frames

ROOT = Path(__file__).resolve().parents[1]
FPS = 25  # four_people_masking.mp4


@pytest.fixture(scope="module")
def detector_model():
    path = ROOT / "models" / "detector.pt"
    if not path.is_file():
        pytest.skip(f"{path} not found (the repo ships models/detector.pt)")
    return str(path)


@pytest.fixture(scope="module")
def four_people(shared_dir):
    return shared_dir / "data" / "footage" / "four_people_masking.mp4"


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

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stopped.mp4", "stopped.mp4.events.jsonl"]


def test_sigkill_leaves_a_playable_partial_video_that_the_next_run_names(tmp_path, detector_model, four_people):
    out = tmp_path / "killed.mp4"
    out.write_bytes(b"the previous run's video")
    proc, stderr, reader = start_and_wait_for(job_command(four_people, out, detector_model), 2 * FPS + 10)
    proc.kill()
    proc.wait(30)
    reader.join(5)
    partial = partial_path(out)
    assert out.read_bytes() == b"the previous run's video"  # never replaced by an unfinished video
    assert partial.is_file() and decodable_frames(partial) >= FPS  # whole seconds of what was processed play
    events_before = Path(f"{out}.events.jsonl").read_text()
    assert events_before  # the first seconds hold alerts

    result = subprocess.run(job_command(four_people, out, detector_model, "--max_frames", "4", "--quiet"),
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    recovered = sorted(tmp_path.glob("killed.incomplete-*.mp4"))
    assert len(recovered) == 1 and str(recovered[0]) in result.stderr, result.stderr
    assert decodable_frames(recovered[0]) >= FPS
    assert Path(f"{recovered[0]}.events.jsonl").read_text() == events_before  # its alerts went with it
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


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB file system (tmpfs), or skip where this user can't mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to make a full disk (the file size limit test covers the same path)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_keeps_the_previous_video(tiny_disk):
    out = tiny_disk / "out.mp4"
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
    kept = list(tiny_disk.glob("out.incomplete-*.mp4"))
    assert len(kept) == 1 and str(kept[0]) in message and decodable_frames(kept[0]) > 0


def _limit_file_size(size):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_the_job_stops_with_one_error_line_when_the_video_cannot_be_written(tmp_path, detector_model, four_people):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the previous run's video")
    result = subprocess.run(job_command(four_people, out, detector_model, "--max_frames", "100"), cwd=ROOT,
                            capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size(200_000))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1 and "writing the video failed" in errors[0] and "previous out.mp4 is kept" in errors[0]
    assert out.read_bytes() == b"the previous run's video"
    assert not partial_path(out).exists() and len(list(tmp_path.glob("out.incomplete-*.mp4"))) == 1


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
