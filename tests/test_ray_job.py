"""Three cameras on a local Ray (2 CPUs): two recorded clips and a loopback MJPEG stream. One camera actor and
one detector actor are killed mid-run; every file frame is in the outputs once, events are complete and not
duplicated, and the stream's camera restarted."""
import http.server
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import pytest

from cctv.alerts import read_events
from cctv.pipeline import JobConfig, run_job
from cctv.video import probe_video, read_frames
from test_resumable import same_events

ray = pytest.importorskip("ray")
from cctv.cameras import cameras_from_paths  # noqa: E402
from cctv.ray_job import RayJob, init_ray, merge_events  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_FRAMES, EVERY = 48, 16


class MjpegCamera:
    """A camera on 127.0.0.1 that keeps broadcasting a clip's frames as MJPEG (multipart/x-mixed-replace) at
    `fps`, whoever watches: a client that reconnects gets the current frames, like a real IP camera."""

    def __init__(self, clip, fps=12.0, size=(480, 253)):
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in read_frames(clip, stop=120)]
        self.jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
        self.fps, self.start = fps, time.monotonic()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while True:
                        n = int((time.monotonic() - camera.start) * camera.fps)
                        jpg = camera.jpegs[n % len(camera.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpg) + jpg + b"\r\n")
                        time.sleep(1 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/camera.mjpg"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _wait_for(job, what, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = {r["camera"]: r for r in job.status()}
        if what(rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"timed out; status: {job.status()}")


@pytest.mark.slow
def test_three_cameras_survive_killed_actors(shared_dir, tmp_path):
    footage = shared_dir / "data/footage"
    clips = [footage / "channy_in.gif", footage / "four_people_masking.mp4"]
    stream = MjpegCamera(footage / "four_people_masking.mp4")
    base = JobConfig(detector_model_path=str(ROOT / "models/detector.pt"), max_frames=MAX_FRAMES, alert_frames=2,
                     alert_cooldown=0.2, no_voice=True, quiet=True, reconnect_delay=0.2)
    cameras = cameras_from_paths([*map(str, clips), stream.url], base, tmp_path)
    names = [c.name for c in cameras]
    assert names == ["channy_in", "four_people_masking", "camera"]
    started = init_ray(num_cpus=2, object_store_memory=200 * 1024 ** 2)
    try:
        job = RayJob(cameras, base, checkpoint_frames=EVERY, max_restarts=3).start()
        # past the stream's first checkpoint: kill its camera and the detector (on an idle machine the clips may
        # be done by then; the stream's camera still needs the detector, so its batches in flight are retried)
        rows = _wait_for(job, lambda r: r.get("camera", {}).get("frames", 0) > EVERY + 4)
        live = rows["four_people_masking"]  # the status table's row
        assert live["restarts"] == 0 and (live["state"] != "running" or live["fps"] > 0)
        ray.kill(job.actors["camera"], no_restart=False)
        ray.kill(job.detectors[0], no_restart=False)
        results = job.wait()
        assert not job.errors, job.errors
    finally:
        stream.close()
        if started:
            ray.shutdown()

    expected = {"channy_in": 20, "four_people_masking": MAX_FRAMES}
    for name, frames in expected.items():  # each file frame once, in the video and the counts
        assert results[name]["frames"] == frames and probe_video(tmp_path / f"{name}.mp4")[0] == frames
    assert results["camera"]["restarts"] >= 1  # the stream's camera came back and went on
    assert results["camera"]["frames"] > EVERY
    live_events = read_events(tmp_path / "camera.mp4.events.jsonl")
    assert len({e["frame"] for e in live_events}) == len(live_events)

    # the file cameras' events are exactly those of the in-process job on the same frames
    ref = run_job(replace(cameras[1].cfg, output_path=str(tmp_path / "ref" / "four.mp4")))
    assert ref.frames == MAX_FRAMES
    want = read_events(tmp_path / "ref" / "four.mp4.events.jsonl")
    assert want and same_events(read_events(tmp_path / "four_people_masking.mp4.events.jsonl"), want)

    merged = read_events(merge_events(cameras, results, tmp_path / "events.jsonl"))
    assert sorted((e["camera"], e["frame"]) for e in merged) == sorted(
        (n, e["frame"]) for n in names for e in read_events(tmp_path / f"{n}.mp4.events.jsonl"))


@pytest.mark.slow
def test_cli_several_sources(shared_dir, tmp_path):
    """The command line with two clips: per-camera outputs, the merged events file, summary and status JSON."""
    import json
    import subprocess
    import sys

    footage = shared_dir / "data/footage"
    r = subprocess.run([sys.executable, "cctv_mask_detector.py", "--footage_path", str(footage / "channy_in.gif"),
                        str(footage / "four_people_masking.mp4"), "--max_frames", "12", "--alert_rule", "frame",
                        "--alert_frames", "2", "--output_path", str(tmp_path), "--status_json",
                        str(tmp_path / "status.json"), "--no_voice"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "channy_in" in r.stdout and "four_people_masking" in r.stdout  # the summary table
    status = json.loads((tmp_path / "status.json").read_text())
    assert [(c["camera"], c["state"], c["frames"]) for c in status["cameras"]] == [
        ("channy_in", "done", 12), ("four_people_masking", "done", 12)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["frames"] for c in summary["cameras"]] == [12, 12]
    merged = read_events(tmp_path / "events.jsonl")
    per_camera = [{"camera": name, **e} for name in ("channy_in", "four_people_masking")
                  for e in read_events(tmp_path / f"{name}.mp4.events.jsonl")]
    assert "four_people_masking" in {e["camera"] for e in merged}  # unmasked people at the start
    assert merged == sorted(per_camera, key=lambda e: (e["time_s"], e["camera"]))  # all of them, in time order
    assert probe_video(tmp_path / "channy_in.mp4")[0] == 12
    assert not list(tmp_path.glob("*.checkpoint.json")) and not list(tmp_path.glob(".*seg*"))
