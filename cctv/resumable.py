"""One camera's run that survives being killed: the per-source job (`pipeline._Job`) in checkpointed segments.

Every `checkpoint_frames` frames the segment's video is closed (published), and a checkpoint records how far the
camera got (next frame, segments, alert state, counts). A restarted run reads the checkpoint back: a file
resumes at the next frame (frames before it are decoded and skipped, not detected again), a live source is
reopened and numbering continues. The events file is appended to, never rewritten, and an event whose frame is
already in it is skipped, so no alert is lost or written twice. At the end the segments are joined (remuxed,
not re-encoded) into the camera's video. Frames processed after the last checkpoint are processed again after
a kill; what is written holds each frame once.

Ray-free: cctv.ray_job runs it in actors and tasks; `detect_batches` is where a batch's detections come from.
"""
import itertools
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import av

from .alerts import AlertMonitor
from .atomic import atomic_path, write_json, write_text
from .errors import UserError
from .pipeline import JobConfig, Warnings, _batches, _Job, default_batch_size, events_path
from .video import open_source, prefetch

DEFAULT_CHECKPOINT_FRAMES = 250  # 10 s at 25 fps: the most work a kill costs
DEFAULT_MAX_RESTARTS = 5  # a camera that dies more often than this is given up (its error is reported)


def checkpoint_path(output_path):
    return Path(f"{output_path}.checkpoint.json")


def segment_path(output_path, i):
    out = Path(output_path)
    return out.parent / f".{out.stem}.part{i:04d}.mp4"


class ResumableEventLog:
    """The events file for a run that may be a restart: appended to, one whole line per write, an event at a
    frame already logged is skipped. A torn last line (a kill mid-write) is cut off when reopened."""

    def __init__(self, path, fresh):
        self.path = Path(path)
        if fresh or not self.path.exists():
            write_text(self.path, "")
        self.frames = set()
        data = self.path.read_bytes()
        whole = data[:data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            os.truncate(self.path, len(whole))
        for line in whole.decode("utf-8").splitlines():
            if line.strip():
                self.frames.add(int(json.loads(line)["frame"]))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    @property
    def last_frame(self):
        return max(self.frames, default=-1)

    def write(self, event):
        if event.frame in self.frames:
            return
        os.write(self.fd, (event.to_json() + "\n").encode("utf-8"))
        self.frames.add(event.frame)

    def close(self):
        """A segment's job closes its log; the camera's log stays open until shutdown()."""

    def shutdown(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def concat_videos(parts, path):
    """Join H.264 .mp4 segments of the same size and rate into one .mp4 without re-encoding (atomic)."""
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            ostream, offset = None, 0
            for part in parts:
                with av.open(str(part)) as inp:
                    istream = inp.streams.video[0]
                    if ostream is None:
                        ostream = out.add_stream_from_template(istream)
                    end = offset
                    for packet in inp.demux(istream):
                        if packet.dts is None:  # the demuxer's flush packet
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        end = max(end, packet.pts + (packet.duration or 0))
                        packet.stream = ostream
                        out.mux(packet)
                    offset = end
    return path


def finish_interrupted(output_path):
    """After the job was stopped (Ctrl-C): join a camera's finished segments into its video, as the
    single-source job leaves the video of what it processed. Returns True when there was something to join."""
    try:
        state = json.loads(checkpoint_path(output_path).read_text())
    except (OSError, ValueError):
        return False
    parts = [Path(output_path).parent / p for p in state.get("segments", [])]
    parts = [p for p in parts if p.exists()]
    if state.get("done") or not parts:
        return False
    concat_videos(parts, output_path)
    return True


class CameraRun:
    """One camera (a JobConfig with its footage_path and output_path) run to the end, resumable. `run_id`
    tells a restart of this run (resume) from a new run of the job (start over)."""

    def __init__(self, name, cfg: JobConfig, run_id, checkpoint_frames=DEFAULT_CHECKPOINT_FRAMES):
        self.name, self.run_id, self.checkpoint_frames = name, run_id, checkpoint_frames
        # a camera process has no window or speaker of its own; its alerts are the events file
        self.cfg = replace(cfg, quiet=True, no_voice=True, display=False, alert_audio=False)
        self.output = Path(self.cfg.output_path)
        self.checkpoint = checkpoint_path(self.output)

    def run(self, detect_batches, report=lambda status: None):
        """detect_batches(iterable of frame batches) -> iterable of (batch, [Faces]); report(dict) gets the
        camera's status after every batch. Returns the camera's summary (a dict)."""
        state = self._load_state()
        state["starts"] += 1
        write_json(self.checkpoint, state)
        if state["done"]:
            return self._summary(state)
        cfg, warn = self.cfg, Warnings()
        source = open_source(cfg.footage_path, cfg.reconnect_attempts, cfg.reconnect_delay, warn)
        events = ResumableEventLog(events_path(self.output), fresh=state["starts"] == 1)
        try:
            info = source.info
            frames = iter(source)
            index = state["next_frame"]
            if info.live:  # frames since the checkpoint are gone; keep numbering after every logged event
                index = max(index, events.last_frame + 1)
            else:
                next(itertools.islice(frames, index, index), None)  # decode and skip what is done
            batch_size = cfg.batch_size or default_batch_size(cfg.device)
            frames = prefetch(frames, maxsize=2 * batch_size, drop_oldest=info.live)
            monitor = AlertMonitor(cfg.alert_threshold, cfg.min_faces, cfg.alert_frames, cfg.alert_cooldown)
            monitor.__dict__.update(state["monitor"])
            status = dict(camera=self.name, source=str(cfg.footage_path), state="running", frames=state["frames"],
                          fps=0.0, people=0, alerts=monitor.count, restarts=state["starts"] - 1)
            try:
                while cfg.max_frames is None or index < cfg.max_frames:
                    take = self.checkpoint_frames if cfg.max_frames is None else min(
                        self.checkpoint_frames, cfg.max_frames - index)
                    n = self._segment(state, itertools.islice(frames, take), info, warn, batch_size, index, events,
                                      monitor, detect_batches, status, report)
                    if n == 0:
                        break
                    index += n
                    state["next_frame"] = index  # a live source's numbering may have jumped past the checkpoint's
                    write_json(self.checkpoint, state)
                    if n < take:
                        break
            except UserError:  # the source is gone for good: keep the video of what was processed
                self._finish(state)
                report({**status, "state": "failed", "fps": 0.0})
                raise
            finally:
                frames.close()
        finally:
            events.shutdown()
            source.close()
        self._finish(state)
        report({**status, "state": "done", "fps": 0.0})
        return self._summary(state)

    def _finish(self, state):
        """Join the segments into the camera's video; the checkpoint says done before they are removed."""
        parts = [self.output.parent / p for p in state["segments"]]
        if parts:
            concat_videos(parts, self.output)
        state["done"] = True
        write_json(self.checkpoint, state)
        for part in parts:
            part.unlink(missing_ok=True)

    def _segment(self, state, frames, info, warn, batch_size, first, events, monitor, detect_batches, status,
                 report):
        seg = segment_path(self.output, len(state["segments"]))
        job = _Job(replace(self.cfg, output_path=str(seg)), info, warn, batch_size, first_frame=first,
                   events=events, monitor=monitor)
        tick, ticked = time.perf_counter(), 0
        try:
            for batch, faces in detect_batches(_batches(frames, batch_size)):
                for frame, f in zip(batch, faces):
                    job.handle(frame, f)
                now, ticked = time.perf_counter(), ticked + len(batch)
                if now - tick >= 1.0 or ticked >= 25:
                    status["fps"], tick, ticked = ticked / (now - tick), now, 0
                status.update(frames=state["frames"] + job.summary.frames, people=faces[-1].total,
                              alerts=monitor.count)
                report(dict(status))
        except UserError:  # a lost source: what this segment got is kept (a crash redoes it instead)
            job.close(True)
            self._commit(state, job, seg, monitor)
            raise
        except BaseException:
            job.close(True)
            raise
        job.close(False)
        return self._commit(state, job, seg, monitor)

    def _commit(self, state, job, seg, monitor):
        s = job.summary
        if s.frames:
            state["segments"].append(seg.name)
        for key in ("frames", "faces", "protected"):
            state[key] += getattr(s, key)
        state["uncertain"] += s.uncertain
        state["alerts"] = monitor.count
        state["monitor"] = dict(monitor.__dict__)
        state["next_frame"] += s.frames
        return s.frames

    def _load_state(self):
        try:
            state = json.loads(self.checkpoint.read_text())
            if state.get("run_id") == self.run_id:
                return state
        except (OSError, ValueError):
            pass
        for stale in self.output.parent.glob(f".{self.output.stem}.part*.mp4"):  # a previous run's leftovers
            stale.unlink(missing_ok=True)
        return dict(run_id=self.run_id, camera=self.name, next_frame=0, segments=[], monitor={}, starts=0,
                    done=False, frames=0, faces=0, protected=0, alerts=0, uncertain=0)

    def _summary(self, state):
        return dict(camera=self.name, source=str(self.cfg.footage_path), output=str(self.output),
                    events=str(events_path(self.output)), restarts=state["starts"] - 1,
                    **{k: state[k] for k in ("frames", "faces", "protected", "alerts", "uncertain")})
