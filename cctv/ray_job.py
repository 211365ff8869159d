"""Many cameras on Ray: each live camera is an actor, each recorded file a task (both a resumable
`cctv.resumable.CameraRun`); detection runs in detector actors (one per GPU, or one per CPUS_PER_DETECTOR
cores) that batch frames across cameras. A status board actor collects each camera's frames/s, people in view,
alerts and state for the terminal table and --status_json.

Faults: a camera actor (or archive task) that dies is restarted and resumes from its checkpoint; a detector
actor that dies is restarted and Ray retries the batches that were in flight (max_task_retries); a lost node's
actors and tasks are rescheduled on the others (outputs must then be on storage every node sees).

Imported only when the job runs on Ray: the single-source job never imports ray.
"""
import asyncio
import itertools
import json
import sys
import time
import uuid
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import ray

from .alerts import read_events
from .atomic import write_json, write_text
from .errors import UserError
from .pipeline import default_batch_size
from .tables import format_table
from .resumable import (DEFAULT_CHECKPOINT_FRAMES, DEFAULT_MAX_RESTARTS, CameraRun, checkpoint_path,
                        finish_interrupted)

REPO_ROOT = Path(__file__).resolve().parents[1]
CPUS_PER_DETECTOR = 2
IN_FLIGHT = 2  # batches a camera keeps at the detectors: the next one is queued while one is detected
STALLED_S = 15.0  # no report for this long: the camera is shown as stalled (restarting, or its node is gone)


def init_ray(address=None, num_cpus=None, object_store_memory=None):
    """Join the cluster at `address` ("auto", "ray://host:10001") or start Ray embedded on this machine.
    Returns True when this call started it (so the caller shuts it down)."""
    if ray.is_initialized():
        return False
    # every node imports the package from the same path (the repository on shared storage on a cluster)
    # actors keep a fixed thread count, so their OpenMP threads wait passively (not the spinning the driver's
    # cctv_mask_detector.py chose for itself: GOMP_SPINCOUNT would override the policy)
    runtime_env = {"env_vars": {"PYTHONPATH": str(REPO_ROOT), "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"}}
    kwargs = dict(address=address, runtime_env=runtime_env, log_to_driver=False, logging_level="WARNING")
    if not address:
        kwargs.update(num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_memory)
    try:
        ray.init(**kwargs)
    except ConnectionError as e:
        raise UserError(f"--ray_address {address}: no Ray cluster there ({str(e).splitlines()[0]})") from None
    return True


@ray.remote
class Detector:
    """MaskPipeline behind a queue: requests that arrive while a batch is being detected are detected together
    (grouped by frame size), up to `max_batch` frames."""

    def __init__(self, model, threads, max_batch):
        from .pipeline import MaskPipeline
        from .threads import set_threads

        if threads:  # else Ray's own cap (OMP_NUM_THREADS = the actor's CPUs)
            set_threads(threads, model.get("device") or "cpu")
        self.pipeline = MaskPipeline.load(**model)
        self.max_batch, self.queue = max_batch, None
        self.frames = self.batches = 0

    async def detect(self, frames):
        """frames: (N, H, W, 3) uint8 -> [Faces] * N."""
        loop = asyncio.get_running_loop()
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.server = loop.create_task(self._serve())
        done = loop.create_future()
        await self.queue.put((frames, done))
        return await done

    async def _serve(self):
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            while not self.queue.empty() and sum(len(f) for f, _ in items) < self.max_batch:
                items.append(self.queue.get_nowait())
            groups = defaultdict(list)
            for frames, done in items:
                groups[frames.shape[1:]].append((frames, done))
            for group in groups.values():
                stacked = np.concatenate([f for f, _ in group])
                try:
                    faces = await loop.run_in_executor(None, self.pipeline, list(stacked))
                except Exception as e:  # goes back to the cameras that asked
                    for _, done in group:
                        if not done.done():
                            done.set_exception(e)
                    continue
                start = 0
                for frames, done in group:
                    if not done.done():
                        done.set_result(faces[start:start + len(frames)])
                    start += len(frames)
                self.frames, self.batches = self.frames + len(stacked), self.batches + 1

    def stats(self):
        return {"frames": self.frames, "batches": self.batches}


@ray.remote(num_cpus=0)
class StatusBoard:
    def __init__(self):
        self.rows = {}

    def update(self, row):
        self.rows[row["camera"]] = {**row, "updated": time.time()}

    def snapshot(self):
        return self.rows


def remote_detect(detectors, class_threshold):
    """detect_batches for CameraRun: batches go round-robin to the detectors, IN_FLIGHT at a time."""
    turn = itertools.count()

    def detect_batches(batches):
        pending = deque()
        for batch in batches:
            detector = detectors[next(turn) % len(detectors)]
            pending.append((batch, detector.detect.remote(np.stack(batch))))
            if len(pending) >= IN_FLIGHT:
                yield _collect(*pending.popleft(), class_threshold)
        while pending:
            yield _collect(*pending.popleft(), class_threshold)

    return detect_batches


def _collect(batch, ref, class_threshold):
    faces = ray.get(ref)
    for f in faces:  # a camera may have its own class threshold; the detectors are shared
        f.threshold = class_threshold
    return batch, faces


def _run_camera(name, cfg, run_id, checkpoint_frames, detectors, board):
    run = CameraRun(name, cfg, run_id, checkpoint_frames)
    return run.run(remote_detect(detectors, cfg.class_threshold), report=lambda row: board.update.remote(row))


@ray.remote(num_cpus=0)
class CameraActor:
    """A live camera's loop (decode, alerts, drawing, recording), restarted where it left off if it dies."""

    def __init__(self, *args):
        self.args = args

    def run(self):
        return _run_camera(*self.args)


@ray.remote(num_cpus=0)
def archive_task(*args):
    """One recorded file, start to end (resumed from its checkpoint when retried)."""
    return _run_camera(*args)


class RayJob:
    """Start the detectors, board and cameras; wait() for the cameras' summaries."""

    def __init__(self, cameras, base_cfg, checkpoint_frames=DEFAULT_CHECKPOINT_FRAMES,
                 max_restarts=DEFAULT_MAX_RESTARTS, run_id=None, detectors=None):
        self.cameras, self.base, self.detectors = cameras, base_cfg, detectors
        self.checkpoint_frames, self.max_restarts = checkpoint_frames, max_restarts
        self.run_id = run_id or uuid.uuid4().hex
        self.actors, self.refs, self.errors, self.results = {}, {}, {}, {}

    def start(self):
        if self.detectors is None:
            self.detectors = self.start_detectors()
        self.board = StatusBoard.options(max_restarts=-1).remote()
        for cam in self.cameras:
            args = (cam.name, _absolute_paths(cam.cfg), self.run_id, self.checkpoint_frames, self.detectors,
                    self.board)
            if cam.live:
                actor = CameraActor.options(max_restarts=self.max_restarts, max_task_retries=-1).remote(*args)
                self.actors[cam.name] = actor
                ref = actor.run.remote()
            else:
                ref = archive_task.options(max_retries=self.max_restarts).remote(*args)
            self.refs[ref] = cam.name
        return self

    def start_detectors(self):
        cfg = self.base
        model = dict(classifier_path=_abs(cfg.detector_model_path), mtcnn_model_path=_abs(cfg.mtcnn_model_path),
                     device=cfg.device, thresholds=cfg.thresholds, min_face_size=cfg.min_face_size,
                     threshold=cfg.class_threshold)
        resources = ray.cluster_resources()
        if str(cfg.device).startswith("cuda"):
            if resources.get("GPU", 0) < 1:
                raise UserError(f"--device {cfg.device}: the Ray cluster has no GPU")
            model["device"] = "cuda"  # Ray gives each detector its own GPU (CUDA_VISIBLE_DEVICES)
            count, options, threads = int(resources["GPU"]), {"num_gpus": 1, "num_cpus": 1}, 0
        else:
            per = max(1, min(CPUS_PER_DETECTOR, int(resources.get("CPU", 1))))
            count, options, threads = max(1, int(resources.get("CPU", 1)) // per), {"num_cpus": per}, cfg.threads or per
        max_batch = 4 * (cfg.batch_size or default_batch_size(model["device"]))
        return [Detector.options(max_restarts=-1, max_task_retries=-1, **options).remote(model, threads, max_batch)
                for _ in range(count)]

    def wait(self, on_tick=None, tick_s=1.0):
        pending = list(self.refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=tick_s)
            for ref in ready:
                name = self.refs[ref]
                try:
                    self.results[name] = ray.get(ref)
                except ray.exceptions.RayError as e:
                    self.errors[name] = _reason(e)
            if on_tick:
                on_tick(self.status())
        return self.results

    def status(self):
        rows, now = ray.get(self.board.snapshot.remote()), time.time()
        table = []
        for cam in self.cameras:
            row = dict(rows.get(cam.name) or dict(camera=cam.name, source=str(cam.cfg.footage_path), state="starting",
                                                  frames=0, fps=0.0, people=0, alerts=0, restarts=0))
            if cam.name in self.errors:
                row.update(state="failed", error=self.errors[cam.name], fps=0.0)
            elif row["state"] == "running" and now - row.get("updated", now) > STALLED_S:
                row.update(state="stalled", fps=0.0)
            table.append(row)
        return table


def run_cameras(cameras, base_cfg, output_dir, ray_address=None, status_json=None, quiet=False,
                checkpoint_frames=DEFAULT_CHECKPOINT_FRAMES, max_restarts=DEFAULT_MAX_RESTARTS):
    """The job on Ray: every camera to its end, then one merged events file and summary in output_dir."""
    started = init_ray(ray_address)
    try:
        job = RayJob(cameras, base_cfg, checkpoint_frames, max_restarts).start()
        table = StatusTable(enabled=not quiet and sys.stderr.isatty())

        def tick(rows):
            table.draw(rows)
            if status_json:
                write_json(status_json, {"time": time.time(), "cameras": rows})

        job.wait(on_tick=tick)
        tick(job.status())
    except KeyboardInterrupt:
        ray.shutdown()  # the job's cameras stop with the driver; then their finished segments become their videos
        for cam in cameras:
            finish_interrupted(_absolute_paths(cam.cfg).output_path)
        raise
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    for result in job.results.values():  # finished: nothing left to resume
        checkpoint_path(result["output"]).unlink(missing_ok=True)
    merged = merge_events(cameras, job.results, Path(output_dir) / "events.jsonl")
    summary = {"cameras": [job.results.get(c.name) or {"camera": c.name, "error": job.errors.get(c.name)}
                           for c in cameras], "events": str(merged)}
    write_json(Path(output_dir) / "summary.json", summary)
    if not quiet:
        print(summary_table(summary["cameras"]) + f"\nevents: {merged}")
    if job.errors:
        raise UserError("; ".join(f"camera {name}: {why}" for name, why in job.errors.items()))
    return summary


def merge_events(cameras, results, path):
    """Every camera's events, each line with its camera's name, in time order."""
    events = []
    for cam in cameras:
        if cam.name in results:
            events += [{"camera": cam.name, **e} for e in read_events(results[cam.name]["events"])]
    events.sort(key=lambda e: (e["time_s"], e["camera"]))
    write_text(path, "".join(json.dumps(e) + "\n" for e in events))
    return path


STATUS_COLUMNS = ("camera", "state", "frames", "fps", "people", "alerts", "restarts")


def _format_rows(rows, columns):
    cells = [[f"{r.get(c, ''):.1f}" if c == "fps" else str(r.get(c, "")) for c in columns] for r in rows]
    return format_table(columns, cells, align="r" * len(columns), sep=" ").split("\n")


class StatusTable:
    """The live per-camera table, redrawn in place on a terminal."""

    def __init__(self, enabled):
        self.enabled, self.lines = enabled, 0

    def draw(self, rows):
        if not self.enabled:
            return
        lines = _format_rows(rows, STATUS_COLUMNS)
        up = f"\x1b[{self.lines}F\x1b[J" if self.lines else ""
        sys.stderr.write(up + "\n".join(lines) + "\n")
        sys.stderr.flush()
        self.lines = len(lines)


def summary_table(results):
    columns = ("camera", "frames", "faces", "protected", "alerts", "uncertain", "restarts")
    ok = [r for r in results if "frames" in r]
    return "\n".join(_format_rows(ok, columns))


def _abs(path):
    return str(Path(path).resolve()) if path else path


def _absolute_paths(cfg):
    """Workers may run elsewhere (another node, another working directory): hand them absolute paths."""
    from dataclasses import replace

    spec = str(cfg.footage_path)
    local = not spec.isdigit() and "://" not in spec
    return replace(cfg, footage_path=_abs(spec) if local else spec, output_path=_abs(cfg.output_path),
                   uncertain_frames_dir=_abs(cfg.uncertain_frames_dir))


def _reason(e):
    cause = getattr(e, "cause", None)
    if isinstance(cause, UserError):
        return str(cause)
    text = str(cause or e).strip().splitlines()
    return text[-1][:300] if text else e.__class__.__name__
