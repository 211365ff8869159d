"""A full disk is one clear line (`error: <path>: disk full (...)`) and nothing half-written is left in
place: saving a model, the uncertain-frames folder, footages_to_frames.py (issue #15, item 12).

Real where root may mount a tiny tmpfs (skipped with a message where not); the same paths again with the
write patched to fail with ENOSPC, so that they are tested everywhere."""
import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import cctv.atomic
from cctv.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def fill(folder, leave_bytes):
    """Fill the file system of `folder` until about `leave_bytes` are free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave_bytes, 0))


@pytest.fixture()
def enospc_after(monkeypatch):
    """Patch cctv.atomic's file writes: the first `n` succeed, the next fail with ENOSPC (as a full disk)."""
    real_open = open

    def patch(n=0):
        count = {"writes": 0}

        class FullFile:
            def __init__(self, f):
                self.f = f

            def write(self, data):
                count["writes"] += 1
                if count["writes"] > n:
                    self.f.write(data[: len(data) // 2])  # a partial write, then the error
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return self.f.write(data)

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        def fake_open(path, mode="r", *args, **kwargs):
            f = real_open(path, mode, *args, **kwargs)
            return FullFile(f) if "w" in mode and Path(path).name.startswith(".") else f

        monkeypatch.setattr(cctv.atomic, "open", fake_open, raising=False)
        return count

    return patch


def no_temp_files(folder):
    return [p for p in Path(folder).rglob(".*") if ".tmp" in p.name]


def small_classifier():
    import torch

    from cctv.classifier import MaskClassifier, build_network

    torch.manual_seed(0)
    return MaskClassifier(build_network("small"), "small")


# --- saving a model -------------------------------------------------------------------------------------
def check_model_save_fails_cleanly(folder):
    from cctv.classifier import save_classifier

    target = folder / "detector.pt"
    target.write_bytes(b"the last good model")
    with pytest.raises(UserError) as e:
        save_classifier(small_classifier(), target)
    assert str(e.value).startswith(f"{target}: disk full"), str(e.value)
    assert "unexpected pos" not in str(e.value)
    assert target.read_bytes() == b"the last good model"
    assert no_temp_files(folder) == []


def test_saving_a_model_on_a_full_disk_keeps_the_last_good_one(tiny_disk):
    folder = tiny_disk("64k")  # the classifier is about 250 KB
    check_model_save_fails_cleanly(folder)


def test_saving_a_model_when_writes_fail_with_enospc(tmp_path, enospc_after):
    enospc_after(0)
    check_model_save_fails_cleanly(tmp_path)


def test_a_model_save_that_fits_still_loads(tiny_disk):
    from cctv.classifier import load_classifier, save_classifier

    folder = tiny_disk("2m")
    save_classifier(small_classifier(), folder / "detector.pt")
    assert load_classifier(folder / "detector.pt").arch == "small"
    assert no_temp_files(folder) == []


# --- the uncertain-frames folder ------------------------------------------------------------------------
def save_uncertain(folder):
    from cctv.uncertain import UncertainFrameSaver

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (270, 480, 3), dtype=np.uint8)  # noise: a big JPEG
    saver = UncertainFrameSaver(folder, "cam")
    return saver.save(frame, 7, np.array([[10, 10, 60, 60]], np.float32), np.array([0.5], np.float32))


def check_no_half_frame(folder):
    names = sorted(p.name for p in Path(folder).iterdir() if p.name != "filler")
    assert names == [], names  # neither a JPEG nor a sidecar without its JPEG, nor a temp file


def test_uncertain_frame_on_a_full_disk_leaves_no_half_frame(tiny_disk):
    folder = tiny_disk("1m")
    fill(folder, 40_000)  # room for the sidecar, not for the JPEG (about 300 KB of noise)
    with pytest.raises(UserError, match="disk full"):
        save_uncertain(folder)
    check_no_half_frame(folder)


def test_uncertain_frame_when_the_jpeg_write_fails_with_enospc(tmp_path, enospc_after):
    enospc_after(1)  # the sidecar is written, the JPEG is not
    with pytest.raises(UserError, match="disk full"):
        save_uncertain(tmp_path)
    check_no_half_frame(tmp_path)


@pytest.mark.slow
def test_main_job_stops_with_one_line_when_the_uncertain_folder_fills(shared_dir, tiny_disk, tmp_path):
    folder = tiny_disk("1m")
    fill(folder, 40_000)
    import sys

    out = tmp_path / "out.mp4"
    done = subprocess.run([sys.executable, str(ROOT / "cctv_mask_detector.py"), "--footage_path",
                           str(shared_dir / "data" / "footage" / "channy_in.gif"), "--output_path", str(out),
                           "--uncertain_frames_dir", str(folder), "--uncertain_margin", "0.5",
                           "--uncertain_max_per_second", "100", "--no_voice", "--quiet", "--max_frames", "20"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1].startswith(f"error: {folder}") and "disk full" in lines[-1], \
        done.stderr
    assert "Traceback" not in done.stderr
    check_no_half_frame(folder)


# --- footages_to_frames.py ------------------------------------------------------------------------------
def check_frames_complete(out):
    from cctv.images import load_image

    assert no_temp_files(out) == []
    for jpg in Path(out).glob("*.jpg"):
        load_image(jpg)  # every frame left is whole


def run_footages_to_frames(shared_dir, tmp_path, out):
    import sys

    footage = tmp_path / "footage"
    footage.mkdir(exist_ok=True)
    if not (footage / "channy_in.gif").exists():
        os.symlink(shared_dir / "data" / "footage" / "channy_in.gif", footage / "channy_in.gif")
    return subprocess.run([sys.executable, str(ROOT / "footages_to_frames.py"), "--footage_dir", str(footage),
                           "--output_dir", str(out), "--frames_per_extract", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_footages_to_frames_on_a_full_disk_is_one_line_and_keeps_whole_frames(shared_dir, tiny_disk, tmp_path):
    out = tiny_disk("96k")
    done = run_footages_to_frames(shared_dir, tmp_path, out)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[-1].startswith(f"error: {out}/") and "disk full" in lines[-1], done.stderr
    assert "Traceback" not in done.stderr
    assert list(out.glob("*.jpg"))  # the frames that fitted are kept (a re-run on more space resumes)
    check_frames_complete(out)


def test_footages_to_frames_when_writes_fail_with_enospc(shared_dir, tmp_path, enospc_after, capsys):
    import footages_to_frames

    (tmp_path / "footage").mkdir()
    os.symlink(shared_dir / "data" / "footage" / "channy_in.gif", tmp_path / "footage" / "channy_in.gif")
    enospc_after(3)
    out = tmp_path / "frames"
    with pytest.raises(SystemExit) as e:
        footages_to_frames.main(footages_to_frames.parse_opt(
            ["--footage_dir", str(tmp_path / "footage"), "--output_dir", str(out), "--frames_per_extract", "1"]))
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith(f"error: {out}/") and "disk full" in err[-1], err
    assert len(list(out.glob("*.jpg"))) == 3
    check_frames_complete(out)


def test_active_learning_history_on_a_full_disk_is_one_line_and_the_next_entry_survives(tiny_disk):
    from cctv.active_learning.journal import History

    folder = tiny_disk("64k")
    history = History(folder / "history.jsonl", echo=False)
    history.log("run-start")
    fill(folder, 0)
    with pytest.raises(UserError, match="disk full"):
        history.log("batch-created", frames=["x" * 100] * 100)
    (folder / "filler").unlink()
    history.log("run-end")
    assert [e["step"] for e in history.entries()] == ["run-start", "run-end"]
