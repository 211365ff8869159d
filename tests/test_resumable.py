"""A camera run killed mid-way resumes from its checkpoint: each frame once in the video, every event once."""
import itertools
from pathlib import Path

import numpy as np
import pytest

from cctv.alerts import AlertEvent, read_events
from cctv.errors import UserError
from cctv.pipeline import JobConfig, MaskPipeline
from cctv.resumable import CameraRun, ResumableEventLog, checkpoint_path
from cctv.video import probe_video, read_frames

ROOT = Path(__file__).resolve().parents[1]
FRAMES, EVERY = 48, 16


def same_events(a, b):
    """The same alerts; snapshot files are named after each run's output."""
    def strip(events):
        return [{**e, "snapshots": [Path(p).name for p in e.get("snapshots", [])]} for e in events]
    return strip(a) == strip(b)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def pipeline():
    return MaskPipeline.load(str(ROOT / "models/detector.pt"))


def _cfg(shared_dir, out):
    return JobConfig(footage_path=str(shared_dir / "data/footage/four_people_masking.mp4"), output_path=str(out),
                     max_frames=FRAMES, alert_frames=2, alert_cooldown=0.2, batch_size=4, no_voice=True, quiet=True)


def _in_process(pipeline, kill_after=None):
    """detect_batches for CameraRun (called once per segment) that dies at the `kill_after`-th batch."""
    done = itertools.count()

    def detect_batches(batches):
        for batch in batches:
            if next(done) == kill_after:
                raise Killed
            yield batch, pipeline(batch)
    return detect_batches


def test_killed_run_resumes_without_loss_or_duplicates(shared_dir, pipeline, tmp_path):
    ref = CameraRun("ref", _cfg(shared_dir, tmp_path / "ref.mp4"), "r1", EVERY).run(_in_process(pipeline))
    ref_events = read_events(tmp_path / "ref.mp4.events.jsonl")
    assert ref["frames"] == FRAMES and len(ref_events) >= 2  # unmasked people at the start: alerts to dedupe

    run = CameraRun("cam", _cfg(shared_dir, tmp_path / "cam.mp4"), "r2", EVERY)
    with pytest.raises(Killed):  # dies in its third batch after the first checkpoint (frame 16 + 8)
        run.run(_in_process(pipeline, kill_after=EVERY // 4 + 2))
    assert not (tmp_path / "cam.mp4").exists()
    summary = CameraRun("cam", _cfg(shared_dir, tmp_path / "cam.mp4"), "r2", EVERY).run(_in_process(pipeline))

    assert summary["frames"] == FRAMES and summary["restarts"] == 1
    got = read_events(tmp_path / "cam.mp4.events.jsonl")
    assert same_events(got, ref_events)
    assert all((tmp_path / path).is_file() for e in got for path in e.get("snapshots", []))
    count, rate, *_ = probe_video(tmp_path / "cam.mp4")
    assert count == FRAMES and rate == 25
    got = np.stack(list(read_frames(tmp_path / "cam.mp4"))).astype(np.int16)
    want = np.stack(list(read_frames(tmp_path / "ref.mp4"))).astype(np.int16)
    assert got.shape == want.shape and np.abs(got - want).mean() < 2.0  # same frames, same order (lossy codec)
    assert not list(tmp_path.glob(".cam.seg*")) and not list(tmp_path.glob("*incomplete*"))  # joined, removed


def test_new_run_starts_over(shared_dir, pipeline, tmp_path):
    cfg = _cfg(shared_dir, tmp_path / "cam.mp4")
    cfg.max_frames = 8
    CameraRun("cam", cfg, "first", EVERY).run(_in_process(pipeline))
    again = CameraRun("cam", cfg, "second", EVERY).run(_in_process(pipeline))
    assert again["frames"] == 8 and again["restarts"] == 0
    assert checkpoint_path(tmp_path / "cam.mp4").exists()


def test_event_log_skips_logged_frames_and_cuts_a_torn_line(tmp_path):
    path = tmp_path / "e.jsonl"
    log = ResumableEventLog(path, fresh=True)
    log.write(AlertEvent(0.4, 10, 2, 0, 0.0))
    log.shutdown()
    with open(path, "a") as f:
        f.write('{"time_s": 0.8, "fra')  # killed mid-write
    log = ResumableEventLog(path, fresh=False)
    log.write(AlertEvent(0.4, 10, 2, 0, 0.0))  # the restarted run finds the same alert again
    log.write(AlertEvent(1.2, 30, 2, 1, 0.5))
    log.shutdown()
    assert [e["frame"] for e in read_events(path)] == [10, 30]


def test_lost_source_keeps_the_video_of_what_was_processed(shared_dir, pipeline, tmp_path):
    def source_lost(batches):  # what a live source that never comes back raises, here after 6 batches
        for n, (batch, faces) in enumerate(_in_process(pipeline)(batches)):
            yield batch, faces
            if n == 5:
                raise UserError("camera: was lost")
    run = CameraRun("cam", _cfg(shared_dir, tmp_path / "cam.mp4"), "r", 16)
    with pytest.raises(UserError, match="was lost"):
        run.run(source_lost)
    assert probe_video(tmp_path / "cam.mp4")[0] == 16 + 8  # the first segment and what the second one got
    assert not list(tmp_path.glob(".cam.seg*"))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling it would create the marker file


def test_a_checkpoint_someone_else_wrote_is_never_unpickled(tmp_path, monkeypatch):
    import base64
    import pickle

    from cctv import resumable

    monkeypatch.setenv("CCTV_RESUME_KEY", str(tmp_path / "key" / "resume.key"))
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_Exploit(marker))
    forged = base64.b64encode(blob).decode("ascii")
    assert resumable._unpickle_signed(forged, "0" * 64) is None
    assert resumable._unpickle_signed(forged, None) is None
    assert not marker.exists()
    assert (resumable.resume_key_path().stat().st_mode & 0o777) == 0o600
    good = pickle.dumps({"alerting": True})
    assert resumable._unpickle_signed(base64.b64encode(good).decode("ascii"), resumable._mac(good)) == {"alerting": True}
