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
import base64
import hashlib
import hmac
import itertools
import json
import os
import pickle
import secrets
import time
from dataclasses import replace
from pathlib import Path

import av

from .atomic import atomic_path, write_json, write_text
from .errors import UserError
from .exit_zone import parse_exit_zone
from .pipeline import JobConfig, Warnings, _batches, _Job, default_batch_size, events_path
from .video import open_source, partial_path, prefetch

DEFAULT_CHECKPOINT_FRAMES = JobConfig.checkpoint_frames
DEFAULT_MAX_RESTARTS = JobConfig.max_restarts
COUNTS = ("frames", "faces", "protected")
RESUMED = ("tracker", "people", "monitor", "alerting", "alerted")  # the _Job state a restart carries on with


def checkpoint_path(output_path):
    return Path(f"{output_path}.checkpoint.json")


def segment_path(output_path, i):
    out = Path(output_path)
    return out.parent / f".{out.stem}.seg{i:04d}.mp4"


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
    """Join H.264 .mp4 segments of the same size and rate into one .mp4 without re-encoding (atomic). Each
    segment's timestamps start after the encoder's delay: they are shifted to follow the previous segment's."""
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            ostream, offset, delay = None, 0, None
            for part in parts:
                with av.open(str(part)) as inp:
                    istream = inp.streams.video[0]
                    if ostream is None:
                        ostream = out.add_stream_from_template(istream)
                    packets = [pk for pk in inp.demux(istream) if pk.dts is not None]  # no flush packet
                    if not packets:
                        continue
                    first = min(pk.pts for pk in packets)
                    delay = first if delay is None else delay
                    end = max(pk.pts + (pk.duration or 0) for pk in packets)
                    for packet in packets:
                        packet.pts += offset + delay - first
                        packet.dts += offset + delay - first
                        packet.stream = ostream
                        out.mux(packet)
                    offset += end - first
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
        status = dict(camera=self.name, source=str(cfg.footage_path), state="running", frames=state["frames"],
                      fps=0.0, people=0, alerts=state["alerts"], restarts=state["starts"] - 1)
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
            try:
                self._record(state, frames, info, warn, batch_size, index, events, detect_batches, status, report)
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

    def _record(self, state, frames, info, warn, batch_size, index, events, detect_batches, status, report):
        """One _Job for this life of the camera, its video cut into segments with a checkpoint after each."""
        cfg, base = self.cfg, {k: state[k] for k in (*COUNTS, "uncertain")}
        zone = parse_exit_zone(cfg.exit_zone, info.width, info.height)
        seg = self._segment_path(state)
        job = _Job(cfg, info, warn, batch_size, zone, first_frame=index, events=events, video_path=seg)
        if state.get("job_state"):  # tracks, people and alert state as they were at the checkpoint
            resumed = _unpickle_signed(state["job_state"], state.get("job_state_mac", ""))
            if resumed is None:
                warn(f"{self.checkpoint}: its saved tracks are not signed by this machine's key; "
                     "going on with fresh tracks")
            else:
                job.__dict__.update(resumed)
        tick, ticked, in_segment = time.perf_counter(), 0, 0
        try:
            for batch, faces in detect_batches(_batches(self._limited(frames, index), batch_size)):
                for frame, f in zip(batch, faces):
                    job.handle(frame, f)
                    in_segment += 1
                    if in_segment == self.checkpoint_frames:
                        seg = self._commit(state, job, base, seg, index)
                        in_segment = 0
                now, ticked = time.perf_counter(), ticked + len(batch)
                if now - tick >= 1.0 or ticked >= 25:
                    status["fps"], tick, ticked = ticked / (now - tick), now, 0
                status.update(frames=base["frames"] + job.summary.frames, people=job.people.counts()["in_view"],
                              alerts=job.monitor.count)
                report(dict(status))
        except UserError:  # a lost source: what the open segment got is kept (a crash redoes it instead)
            job.close(True)
            self._commit(state, job, base, seg, index, last=True)
            raise
        except BaseException:
            job.close(True)
            raise
        job.close(False)
        self._commit(state, job, base, seg, index, last=True)

    def _limited(self, frames, index):
        """The frames still to do under --max_frames (which counts from the camera's first frame)."""
        if self.cfg.max_frames is None:
            return frames
        return itertools.islice(frames, max(0, self.cfg.max_frames - index))

    def _segment_path(self, state):
        seg = segment_path(self.output, len(state["segments"]))
        for leftover in (seg, partial_path(seg)):  # an uncommitted segment of a killed life: redone now
            leftover.unlink(missing_ok=True)
        return seg

    def _commit(self, state, job, base, seg, first, last=False):
        """The segment is finished: its video is renamed into place, then the checkpoint records it. Returns
        the next segment's path (recording goes on there) unless `last`."""
        if last:
            if job.writer:  # None with --record alerts / none
                job.writer.close()
        else:
            job.next_video(segment_path(self.output, len(state["segments"]) + 1))
        if seg.exists():
            state["segments"].append(seg.name)
        s = job.summary
        for key in COUNTS:
            state[key] = base[key] + getattr(s, key)
        state["alerts"] = job.monitor.count
        state["uncertain"] = base["uncertain"] + (job.saver.saved if job.saver else 0)
        state["next_frame"] = first + s.frames
        state["job_state"], state["job_state_mac"] = self._job_state(job)
        write_json(self.checkpoint, state)
        return None if last else segment_path(self.output, len(state["segments"]))

    @staticmethod
    def _job_state(job):
        """What a restarted camera needs to go on as if never stopped: pickled, and signed (HMAC) with a key
        that lives outside the output folder, so a checkpoint someone else wrote is never unpickled."""
        blob = pickle.dumps({k: getattr(job, k) for k in RESUMED})
        return base64.b64encode(blob).decode("ascii"), _mac(blob)

    def _finish(self, state):
        """Join the segments into the camera's video; the checkpoint says done before they are removed."""
        parts = [self.output.parent / p for p in state["segments"]]
        if parts:
            concat_videos(parts, self.output)
        state["done"] = True
        write_json(self.checkpoint, state)
        for part in parts:
            part.unlink(missing_ok=True)

    def _load_state(self):
        try:
            state = json.loads(self.checkpoint.read_text())
            if state.get("run_id") == self.run_id:
                return state
        except (OSError, ValueError):
            pass
        for stale in self.output.parent.glob(f".{self.output.stem}.seg*.mp4"):  # a previous run's leftovers
            stale.unlink(missing_ok=True)
        return dict(run_id=self.run_id, camera=self.name, next_frame=0, segments=[], job_state=None, starts=0,
                    done=False, frames=0, faces=0, protected=0, alerts=0, uncertain=0)

    def _summary(self, state):
        return dict(camera=self.name, source=str(self.cfg.footage_path), output=str(self.output),
                    events=str(events_path(self.output)), restarts=state["starts"] - 1,
                    **{k: state[k] for k in ("frames", "faces", "protected", "alerts", "uncertain")})


def resume_key_path():
    return Path(os.environ.get("CCTV_RESUME_KEY") or Path.home() / ".cache" / "cctv-mask-detector" / "resume.key")


def _resume_key():
    """This machine's secret for signing resume state (made once, mode 0600, published by a link so that
    concurrent cameras agree on one key)."""
    path = resume_key_path()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(secrets.token_bytes(32))
            try:
                os.link(tmp, path)  # fails if another camera made the key first: theirs is kept
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _mac(blob):
    return hmac.new(_resume_key(), blob, hashlib.sha256).hexdigest()


def _unpickle_signed(text, mac):
    """The resume state, or None when its signature does not match (never unpickled then)."""
    try:
        blob = base64.b64decode(text)
    except ValueError:
        return None
    if not isinstance(mac, str) or not hmac.compare_digest(_mac(blob), mac):
        return None
    return pickle.loads(blob)
