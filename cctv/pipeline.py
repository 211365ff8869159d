"""The main job: frames -> faces (MTCNN) -> crops -> P(protected) -> uncertain capture -> alerts -> drawing ->
H.264 video, in batches of frames that stream through (memory stays flat however long the footage).

`MaskPipeline` (detect + classify a batch of frames) is reusable on its own; `run_job(JobConfig(...))` is
`cctv_mask_detector.py`.
"""
import ctypes
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .alerts import DEFAULT_MESSAGE, AlertMonitor, EventLog, PersonAlertMonitor, VoiceAlert, render_speech
from .annotate import draw_banner, draw_faces, draw_people
from .atomic import write_text
from .cli import CLASS_THRESHOLD_FLAG, check_device, parse_thresholds
from .errors import (STOP_SIGNALS, Interrupted, UserError, check_range, check_threads, handling_signals,
                     stop_signals_as_interrupt, user_errors)
from .exit_zone import parse_exit_zone
from .privacy import BLUR_MODES, faces_to_blur, pixelate_faces
from .retention import check_days, describe, prune_outputs
from .tables import format_table
from .timeline import Timeline, iso, now, timeline_path, write_manifest
from .motion import MODES as MOTION_MODES
from .recording import RECORD_MODES, AlertClips, AnnotatedFrame, default_record_mode
from .threads import ThreadGovernor, codec_threads
from .video import (URL_SCHEMES, BackgroundWriter, VideoWriter, check_writable, check_writable_dir, open_source,
                    partial_path, prefetch)

DEFAULT_CLASSIFIER = "models/detector.pt"
RETENTION_EVERY_S = 3600.0  # live sources: old recordings are pruned again every hour


ALERT_RULES = ("person", "frame")


@dataclass
class Faces:
    """One frame's faces: boxes (N,4) x1,y1,x2,y2, MTCNN probabilities (N,), P(protected) (N,), the
    track id of each (N,) int, -1 = untracked (filled in by the job's tracker), and ONet's 5 landmarks (N,5,2)
    where the detector gave them."""
    boxes: np.ndarray
    det_probs: np.ndarray
    p_protected: np.ndarray
    threshold: float = 0.5
    track_ids: np.ndarray = None
    landmarks: np.ndarray = None

    def __post_init__(self):
        if self.track_ids is None:
            self.track_ids = np.full(len(self.boxes), -1, dtype=int)

    @property
    def total(self):
        return len(self.boxes)

    @property
    def protected(self):
        return int((self.p_protected >= self.threshold).sum())


class MaskPipeline:
    """Detect faces in a batch of same-size frames and classify each: `pipeline(frames) -> [Faces]`.
    Crops are made with the MTCNN settings the classifier was trained with (image size, margin)."""

    def __init__(self, detector, classifier, threshold=0.5):
        self.detector, self.classifier, self.threshold = detector, classifier, threshold
        self.mtcnn_model_path = None
        self.gated = None  # a motion.GatedDetector once gate_motion() is called
        settings = classifier.mtcnn_settings
        self.image_size = int(settings.get("image_size", classifier.input_size))
        self.margin = settings.get("margin", 0)

    @classmethod
    def load(cls, classifier_path=DEFAULT_CLASSIFIER, mtcnn_model_path=None, device="cpu", thresholds=None,
             min_face_size=None, threshold=0.5):
        """The classifier checkpoint and MTCNN (pretrained, or fine-tuned weights); detection settings default
        to those the classifier's training crops were made with."""
        from mtcnn import MTCNN, MTCNNWeightsError  # noqa: heavy imports only when a pipeline is built

        from .classifier import load_classifier
        from .face_dataset import MTCNN_ARGUMENTS

        device = check_device(device)
        if mtcnn_model_path and not Path(mtcnn_model_path).is_file():
            raise UserError(f"{mtcnn_model_path}: no such MTCNN checkpoint")
        classifier = load_classifier(classifier_path, device=device)
        mtcnn_model_path = mtcnn_model_path or paired_mtcnn(classifier, classifier_path)
        settings = {k: v for k, v in classifier.mtcnn_settings.items() if k in MTCNN_ARGUMENTS}
        if thresholds is not None:
            settings["thresholds"] = list(thresholds)
        if min_face_size is not None:
            settings["min_face_size"] = min_face_size
        with user_errors(MTCNNWeightsError):
            detector = MTCNN(**settings, keep_all=True, select_largest=False, device=device,
                             weights_path=mtcnn_model_path)
        pipeline = cls(detector, classifier, threshold)
        pipeline.mtcnn_model_path = mtcnn_model_path  # what was loaded (None: pretrained), e.g. for the log
        return pipeline

    def gate_motion(self, fps, mode="auto", keyframe_s=2.0):
        """Detect only where the picture changed (cctv.motion): returns the MotionGate, whose
        request_keyframe() asks for a whole-frame detection of the next frame. mode "off": no gating."""
        from .motion import GatedDetector, MotionGate

        self.gated = None if mode == "off" else GatedDetector(self.detector, MotionGate(fps, mode, keyframe_s))
        return self.gated.gate if self.gated else None

    def __call__(self, frames):
        from mtcnn import crop_faces

        frames = list(frames)
        if not frames:
            return []
        detector = self.gated or self.detector
        boxes, probs, points = detector.detect(frames if self.gated else np.stack(frames), landmarks=True)
        crops = [crop_faces(f, b, self.image_size, self.margin) for f, b in zip(frames, boxes)]
        counts = [len(c) for c in crops]
        scores = self.classifier.predict(np.concatenate(crops)) if sum(counts) else np.zeros(0, np.float32)
        split = np.split(scores, np.cumsum(counts)[:-1])
        return [Faces(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(p, np.float32), s, self.threshold,
                      landmarks=np.asarray(lm, np.float32).reshape(-1, 5, 2))
                for b, p, s, lm in zip(boxes, probs, split, points)]


def paired_mtcnn(classifier, classifier_path):
    """The MTCNN weights a classifier was trained to work with (mtcnn_settings["weights"], a file beside the
    classifier checkpoint, e.g. the CCTV pair), or None for the pretrained MTCNN."""
    name = classifier.mtcnn_settings.get("weights")
    if not name:
        return None
    path = Path(classifier_path).parent / Path(str(name)).name  # never a path from inside the file
    if not path.is_file():
        raise UserError(f"{classifier_path}: its MTCNN weights {path} are missing (give --mtcnn_model_path)")
    return str(path)


@dataclass
class JobConfig:
    """Everything `cctv_mask_detector.py` takes (its flags, same names): the one place its defaults are written."""
    footage_path: str | list | None = None  # several (a list): one camera each, on Ray
    detector_model_path: str = DEFAULT_CLASSIFIER
    output_path: str | None = None
    mtcnn_model_path: str | None = None
    device: str = "cpu"
    batch_size: int | None = None  # None: default_batch_size(device)
    threads: int = 0
    fixed_threads: bool = False
    thresholds: list | None = None
    min_face_size: int | None = None
    class_threshold: float = 0.5
    track_threshold: float = 0.6
    alert_threshold: float = 0.75
    alert_rule: str = "person"
    exit_zone: str | None = None
    min_faces: int = 1
    alert_frames: int = 5
    alert_cooldown: float = 10.0
    alert_message: str = DEFAULT_MESSAGE
    alert_audio: bool = False
    no_voice: bool = False
    display: bool = False
    uncertain_frames_dir: str | None = None
    uncertain_prob_band: list = field(default_factory=lambda: [0.7, 0.95])
    uncertain_margin: float = 0.15
    uncertain_max_per_second: float = 1.0
    reconnect_attempts: int = 5
    reconnect_delay: float = 1.0
    max_frames: int | None = None
    motion: str = "auto"
    keyframe_s: float = 2.0
    record: str | None = None  # None: default_record_mode (all for footage, alerts for cameras and streams)
    clip_before_s: float = 3.0
    clip_after_s: float = 5.0
    report: bool = False
    report_every_s: float = 60.0
    blur_faces: str = "all"  # privacy by default: faces leave the machine only pixelated unless chosen
    retention_days: float | None = None
    demo: bool = False
    quiet: bool = False
    # several cameras, on Ray (cctv_mask_detector.run_many); a single camera's job ignores them
    cameras: str | None = None  # cameras.yaml
    ray_address: str | None = None
    status_json: str | None = None
    checkpoint_frames: int = 250  # 10 s at 25 fps: the most work a kill costs
    max_restarts: int = 5  # a camera that dies more often than this is given up (its error is reported)


@dataclass
class JobSummary:
    source: str
    output: Path
    events: Path
    frames: int = 0
    faces: int = 0
    protected: int = 0
    alerts: int = 0
    uncertain: int = 0
    seconds: float = 0.0
    people: dict = field(default_factory=dict)  # people seen, by their last state (People.seen())
    cpu_seconds: float = 0.0  # CPU time of the whole process (all threads) over the same span
    record: str = "all"
    clips: int = 0
    detection: dict | None = None  # frames detected whole / in regions / skipped, with motion gating
    report: Path | None = None

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds else 0.0

    def table(self):
        people = [self.people.get(k, 0) for k in ("protected", "unprotected", "unknown")]
        head = ("frames", "faces", "faces protected", "people", "protected", "unprotected", "unknown", "alerts",
                "uncertain saved", "frames/s")
        row = (self.frames, self.faces, self.protected, sum(people), *people, self.alerts, self.uncertain,
               f"{self.fps:.1f}")
        video = {"all": f"video:  {self.output}",
                 "alerts": f"clips:  {self.clips} in {self.output.with_name(self.output.stem + '.clips')}",
                 "none": "video:  not recorded (--record none)"}[self.record]
        gating = [] if not self.detection else [
            "detection: " + ", ".join(f"{v} frames {k}" for k, v in self.detection.items())]
        report = [f"report: {self.report}"] if self.report else []
        return "\n".join([format_table(head, [row], align="r" * len(head)), video, f"events: {self.events}"]
                         + gating + report)


class Warnings:
    """Each distinct warning printed once (to stderr, above the progress bar)."""

    def __init__(self):
        self.seen = set()

    def __call__(self, message):
        if message not in self.seen:
            self.seen.add(message)
            tqdm.write(f"warning: {message}", file=sys.stderr)


def events_path(output_path):
    return Path(f"{output_path}.events.jsonl")


def default_batch_size(device):
    """Frames per detection batch: 4 on the CPU (batching buys nothing there), 32 on a GPU."""
    return 4 if str(device or "cpu").startswith("cpu") else 32


def validate(cfg: JobConfig):
    """Flag and path checks that need no work: raise UserError before anything runs."""
    if cfg.demo and cfg.footage_path:
        raise UserError("--demo and --footage_path: give one or the other")
    if not cfg.demo and not cfg.footage_path:
        raise UserError("no input: give --footage_path (file, folder, camera index or URL) or --demo")
    if (cfg.batch_size is not None and cfg.batch_size < 1) or cfg.min_faces < 1 or cfg.alert_frames < 1:
        raise UserError("--batch_size, --min_faces and --alert_frames must be 1 or more")
    check_threads(cfg.threads)
    check_range(CLASS_THRESHOLD_FLAG, cfg.class_threshold, 0, 1)
    check_range("--track_threshold", cfg.track_threshold, 0, 1)
    check_range("--alert_cooldown", cfg.alert_cooldown, 0)
    check_range("--reconnect_attempts", cfg.reconnect_attempts, 0)
    check_range("--reconnect_delay", cfg.reconnect_delay, 0)
    if cfg.max_frames is not None and cfg.max_frames < 1:
        raise UserError(f"--max_frames must be 1 or more, got {cfg.max_frames}")
    if cfg.min_face_size is not None and not cfg.min_face_size > 0:
        raise UserError(f"--min_face_size must be a positive number of pixels, got {cfg.min_face_size}")
    if cfg.motion not in MOTION_MODES:
        raise UserError(f"--motion {cfg.motion}: use one of {', '.join(MOTION_MODES)}")
    if cfg.record is not None and cfg.record not in RECORD_MODES:
        raise UserError(f"--record {cfg.record}: use one of {', '.join(RECORD_MODES)}")
    check_range("--keyframe_s", cfg.keyframe_s, 0, lo_open=True)
    check_range("--clip_before_s", cfg.clip_before_s, 0)
    check_range("--clip_after_s", cfg.clip_after_s, 0)
    if not 0 < cfg.alert_threshold <= 1:
        raise UserError(f"--alert_threshold must be in (0, 1], got {cfg.alert_threshold}")
    if cfg.alert_rule not in ALERT_RULES:
        raise UserError(f"--alert_rule {cfg.alert_rule}: use one of {', '.join(ALERT_RULES)}")
    parse_exit_zone(cfg.exit_zone)
    cfg.thresholds = parse_thresholds(cfg.thresholds)
    lo, hi = cfg.uncertain_prob_band
    if not 0 <= lo < hi or cfg.uncertain_max_per_second <= 0 or not 0 <= cfg.uncertain_margin <= 0.5:
        raise UserError("--uncertain_prob_band needs LO < HI, --uncertain_margin 0..0.5, "
                        "--uncertain_max_per_second > 0")
    if cfg.blur_faces not in BLUR_MODES:
        raise UserError(f"--blur_faces {cfg.blur_faces}: use one of {', '.join(BLUR_MODES)}")
    check_range("--report_every_s", cfg.report_every_s, 0, lo_open=True)
    check_days(cfg.retention_days)
    spec = str(cfg.footage_path or "")
    if spec and not spec.isdigit() and not spec.lower().startswith(URL_SCHEMES) and not Path(spec).exists():
        raise UserError(f"{spec}: no such file or folder")
    output = Path(cfg.output_path)
    if output.suffix.lower() != ".mp4":
        raise UserError(f"{output}: the output must be an .mp4 file (H.264)")
    if output.is_dir():
        raise UserError(f"{output}: is a folder; give a file name ending in .mp4")
    check_writable(output, "output")
    check_not_the_footage(output, spec)
    if cfg.uncertain_frames_dir:
        check_writable_dir(cfg.uncertain_frames_dir, "--uncertain_frames_dir")
    if cfg.mtcnn_model_path and not Path(cfg.mtcnn_model_path).is_file():
        raise UserError(f"{cfg.mtcnn_model_path}: no such MTCNN checkpoint")
    if not str(cfg.detector_model_path) or not Path(cfg.detector_model_path).is_file():
        raise UserError(f"{cfg.detector_model_path}: no such classifier checkpoint "
                        f"(train one with train_mask_detector.py, or pass --detector_model_path)")


def check_not_the_footage(output, spec):
    """Refuse outputs that would replace or feed the footage: the output video, its events file or its partial
    file being the footage file (also through a symbolic or hard link), or the output inside a footage folder
    (the next run would read the annotated video as footage)."""
    footage = Path(spec)
    if not spec or spec.isdigit() or spec.lower().startswith(URL_SCHEMES) or not footage.exists():
        return
    if footage.is_dir():
        folder = footage.resolve()
        if folder == output.parent.resolve() or folder in output.parent.resolve().parents:
            raise UserError(f"{output}: is inside the footage folder {spec}; the next run would read it as "
                            f"footage: give an --output_path outside it")
        return
    for path in (output, events_path(output), partial_path(output)):
        try:
            same = os.path.samefile(path, footage)
        except OSError:  # does not exist (yet)
            continue
        if same:
            raise UserError(f"{path}: is the footage itself ({spec}); writing it would destroy the recording: "
                            f"give another --output_path")


def adopt_killed_run(output_path, recovered):
    """A killed run's events and snapshots go with its recovered video (`recovered`), the snapshot paths in
    its events rewritten, so that this run's start does not overwrite them."""
    from .snapshots import snapshots_dir

    events, snapshots = events_path(output_path), snapshots_dir(output_path)
    moved = snapshots_dir(recovered)
    if snapshots.is_dir():
        os.replace(snapshots, moved)
    if not events.is_file():
        return
    old, new = f"{snapshots.name}/", f"{moved.name}/"
    lines = []
    for line in events.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:  # the killed run's torn last line
            continue
        if isinstance(event, dict) and isinstance(event.get("snapshots"), list):
            event["snapshots"] = [new + p[len(old):] if str(p).startswith(old) else p for p in event["snapshots"]]
        lines.append(json.dumps(event) + "\n")
    write_text(events_path(recovered), "".join(lines))
    events.unlink()


def default_output_path(cfg: JobConfig):
    if cfg.demo:
        return "runs/demo/demo.mp4"
    spec = str(cfg.footage_path).rstrip("/")
    stem = f"camera{spec}" if spec.isdigit() else (Path(spec.split("?")[0]).stem or "stream")
    return f"runs/cctv/{stem}.mp4"


def release_freed_memory():
    """Hand memory freed by past batches back to the system (glibc's malloc keeps it otherwise), so that
    the footprint stays flat over hours of footage. Cheap every few batches. (An earlier fixed mmap
    threshold did the same at half the frame rate: every big buffer then page-faulted; since PNet runs in
    bands of rows and RNet/ONet in chunks, no per-frame buffer is big. benchmarks/bench_pipeline.py)"""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - raises AttributeError where malloc is not glibc's (musl, ...)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _glibc()
TRIM_EVERY_S = 5.0  # release_freed_memory takes about 20 ms: every few seconds keeps the footprint flat


def run_job(cfg: JobConfig, on_frame=None) -> JobSummary:
    """The main job. `on_frame(job, faces)`, if given, is called after each frame is handled (benchmarks
    read the tracks and people there)."""
    if not cfg.output_path:
        cfg.output_path = default_output_path(cfg)
    validate(cfg)
    warn = Warnings()
    prune_old_runs(cfg)
    source = None if cfg.demo else open_source(cfg.footage_path, cfg.reconnect_attempts, cfg.reconnect_delay, warn)
    try:
        pipeline = MaskPipeline.load(cfg.detector_model_path, cfg.mtcnn_model_path, cfg.device, cfg.thresholds,
                                     cfg.min_face_size, cfg.class_threshold)
        if not cfg.quiet:
            from .model_safety import describe_model

            print(describe_model(cfg.detector_model_path, "classifier"),
                  describe_model(pipeline.mtcnn_model_path, "MTCNN"), sep="\n", flush=True)
        if cfg.demo:
            from .demo import make_demo_clip

            source = open_source(make_demo_clip(Path(cfg.output_path).parent, pipeline.detector), warn=warn)
        return _watch(cfg, pipeline, source, warn, on_frame)
    finally:
        if source is not None:
            source.close()


def prune_old_runs(cfg):
    """--retention_days: remove the old runs in the output's folder (this run's own files are kept)."""
    folder = Path(cfg.output_path).parent
    removed = prune_outputs(folder, cfg.retention_days, keep=[cfg.output_path])
    if removed:
        tqdm.write(f"retention: removed {describe(removed, folder)} (older than {cfg.retention_days:g} days) "
                   f"from {folder}")


def _watch(cfg, pipeline, source, warn, on_frame=None):
    info = source.info
    total = min(info.frames, cfg.max_frames) if info.frames and cfg.max_frames else (cfg.max_frames or info.frames)
    batch_size = cfg.batch_size or default_batch_size(cfg.device)
    frames = prefetch(_limit(iter(source), cfg.max_frames), maxsize=2 * batch_size, drop_oldest=info.live)
    zone = parse_exit_zone(cfg.exit_zone, info.width, info.height)  # now that the frame size is known
    gate = pipeline.gate_motion(info.fps, cfg.motion, cfg.keyframe_s)
    with stop_signals_as_interrupt():  # SIGTERM, SIGHUP: stop as Ctrl-C does, the video is closed and kept
        job = _Job(cfg, info, warn, batch_size, zone, gate=gate)
        progress = tqdm(total=total, unit="frame", desc=info.stem, disable=cfg.quiet, dynamic_ncols=True)
        failed = True  # until the loop ends normally
        governor = _thread_governor(cfg)
        try:
            trimmed = -TRIM_EVERY_S
            for batch in _batches(frames, batch_size):
                governor()
                if time.monotonic() - trimmed >= TRIM_EVERY_S:
                    release_freed_memory()
                    trimmed = time.monotonic()
                for frame, faces in zip(batch, pipeline(batch)):
                    job.handle(frame, faces)
                    if on_frame:
                        on_frame(job, faces)
                progress.update(len(batch))
            failed = False
        finally:
            with _no_interrupts():  # a second signal must not leave a half-written video
                governor.restore()
                frames.close()
                try:
                    progress.close()
                except OSError:  # the terminal is gone (SIGHUP): the video matters, not the bar
                    pass
                job.summary.detection = dict(pipeline.gated.stats) if pipeline.gated else None
                job.close(failed)
    return job.summary


def _thread_governor(cfg):
    """On the CPU, torch's threads follow the cores other work leaves free (cctv.threads.ThreadGovernor);
    --fixed_threads keeps --threads."""
    import torch

    return ThreadGovernor(torch.get_num_threads(),
                          enabled=not cfg.fixed_threads and str(cfg.device).startswith("cpu"))


class _Job:
    """One run's outputs and state: tracks and people, alert logic, events, snapshots, voice, uncertain frames,
    drawing, video, window. `job.people` (cctv.people.People) holds each person's state; `.counts()` gives
    in_view / protected / unprotected / unknown / seen."""

    def __init__(self, cfg, info, warn, batch_size, zone=None, first_frame=0, events=None, video_path=None,
                 gate=None):
        """`first_frame`, `events` and `video_path` serve a resumable camera (cctv.resumable): its frame
        numbering and events file continue across restarts, its video is written in segments (next_video).
        `gate`: the motion.MotionGate or None; gate.request_keyframe() asks for a whole-frame detection.
        --record alerts writes clips (cctv.recording.AlertClips) instead of the video; none writes neither."""
        from .bodies import BodyTracker
        from .people import People
        from .snapshots import SnapshotSaver, snapshots_dir
        from .tracking import FaceTracker

        self.cfg, self.fps, self.first_frame, self.info, self.warn = cfg, float(info.fps), first_frame, info, warn
        # a resumable camera (video_path: its segments) keeps its whole video unless told otherwise
        self.gate, self.record = gate, cfg.record or ("all" if video_path else default_record_mode(info.live))
        if cfg.alert_audio and self.record != "all":
            warn(f"--alert_audio: the audio track is for --record all; not mixed into --record {self.record}")
        self.speech = render_speech(cfg.alert_message, warn) if cfg.alert_audio and self.record == "all" else None
        self.voice = None if cfg.no_voice else VoiceAlert(cfg.alert_message, warn)
        self.tracker = FaceTracker(self.fps, high_prob=cfg.track_threshold)
        self.people = People(cfg.class_threshold, zone=zone, fps=self.fps)
        self.bodies = BodyTracker(self.fps)  # people whose faces are turned away count too (not known)
        if cfg.alert_rule == "frame":
            self.monitor = AlertMonitor(cfg.alert_threshold, cfg.min_faces, cfg.alert_frames, cfg.alert_cooldown)
        else:
            self.monitor = PersonAlertMonitor(cfg.alert_threshold, cfg.min_faces)
        self.saver = None
        if cfg.uncertain_frames_dir:
            from .uncertain import UncertainFrameSaver

            self.saver = UncertainFrameSaver(cfg.uncertain_frames_dir, info.stem, info.live,
                                             tuple(cfg.uncertain_prob_band), cfg.uncertain_margin,
                                             cfg.uncertain_max_per_second, cfg.class_threshold)
        self.display = Display(warn) if cfg.display else None
        self.summary = JobSummary(info.name, Path(cfg.output_path), events_path(cfg.output_path),
                                  record=self.record)
        # room for a whole batch: the encoder works while the next is detected
        self.writer_room = max(4, batch_size)
        self.writer = self.clips = None
        if self.record == "all":
            # On the CPU one encoder thread keeps up with detection; more would preempt the detector's threads.
            video = self._new_video(video_path or cfg.output_path)
            try:
                if video.recovered and events is None:
                    adopt_killed_run(cfg.output_path, video.recovered)
                self.events = events or EventLog(self.summary.events)
            except BaseException:
                video.close()  # no frame written: nothing left behind
                raise
            self.writer = BackgroundWriter(video, maxsize=self.writer_room)
        else:
            self.events = events or EventLog(self.summary.events)
        if self.record == "alerts":
            self.clips = AlertClips(cfg.output_path, info, codec_threads(), self.writer_room,
                                    cfg.clip_before_s, cfg.clip_after_s, warn)
        self.snapshots = SnapshotSaver(snapshots_dir(cfg.output_path), self.summary.events.parent)
        self.alerting = False  # an alert fired and its condition still holds: the banner is red
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.alerted = set()  # track ids of the people alerts were about (kept visible with --blur_faces others)
        self.info, self.started = info, now()
        self.timeline = Timeline(timeline_path(cfg.output_path), info.fps, self.started, info.live,
                                 resume=first_frame > 0)  # a resumable camera's next life (cctv.resumable)
        self.write_manifest("running")
        self.report = None
        if cfg.report:
            from .report.live import RunReport

            self.report = RunReport(cfg.output_path, cfg.report_every_s if info.live else None, warn)
            self.summary.report = self.report.target
        self.next_retention = time.monotonic() + RETENTION_EVERY_S if info.live and cfg.retention_days else None

    def _new_video(self, path):
        speech, info = self.speech, self.info
        return VideoWriter(path, info.width, info.height, info.fps,
                           alert_audio=speech[0] if speech else None, sample_rate=speech[1] if speech else 22050,
                           threads=codec_threads(), warn=self.warn)

    def next_video(self, path):
        """Finish the video so far (it is renamed into place) and go on recording into `path`."""
        if self.writer is None:  # --record alerts / none: no video to split
            return
        self.writer.close()
        self.writer = BackgroundWriter(self._new_video(path), maxsize=self.writer_room)

    def handle(self, frame, faces):
        """Uncertain capture (on the raw frame), alert logic, drawing, then the frame goes to the video."""
        s = self.summary
        index = self.first_frame + s.frames
        time_s = index / self.fps
        if self.saver:
            self.saver.consider(frame, index, time_s, faces.boxes, faces.det_probs, faces.p_protected)
        faces.track_ids = self.tracker.update(faces.boxes, faces.det_probs)
        bodies = self.bodies.update(frame)
        self.people.update(time_s, faces.boxes, faces.det_probs, faces.p_protected, faces.track_ids, frame,
                           faces.landmarks, bodies)
        counts = self.people.counts()
        if self.gate is not None:  # people standing still keep keyframes coming, searched where they are
            self.gate.people_in_view = counts["in_view"] > 0
            self.gate.people_boxes = bodies[0]
        event = self._judge(index, time_s, faces)
        if event:
            self.alerted.update(int(t) for t in event.track_ids)
        self._blur(frame, faces)  # after the uncertain frame was saved raw (labelers need faces), before snapshots
        if event:
            named = [p for p in map(self.people.get, event.track_ids) if p is not None]
            event = event.with_snapshots(self.snapshots.save(self.monitor.count, index, frame, named,
                                                             conceal_faces=self.cfg.blur_faces == "all"))
            if self.clips:
                event = replace(event, clip=self.clips.alert(time_s))
            self.events.write(event)
            if self.writer:
                self.writer.add_audio_clip(time_s)
            if self.voice:
                self.voice.say()
        self.alerting = event is not None or (self.alerting and self._condition_holds(counts))
        # Drawn only when recorded or shown: with --record alerts most frames are neither drawn nor encoded.
        item = AnnotatedFrame(frame, partial(self._draw, faces=faces, alert=self.alerting,
                                             counts=counts if self.cfg.alert_rule != "frame" else None))
        if self.writer:
            self.writer.write(item.image())
        if self.clips:
            self.clips.add(item)
        if self.display and not self.display.show(item.image()):
            raise KeyboardInterrupt  # q in the window: stop as Ctrl-C does
        s.frames, s.faces, s.protected = s.frames + 1, s.faces + faces.total, s.protected + faces.protected
        self.timeline.add(index, faces.total, faces.protected, counts["in_view"], counts["seen"])
        self._housekeeping()

    def _blur(self, frame, faces):
        """--blur_faces: pixelate faces before anything is drawn, so the video and all taken from it hide them."""
        if self.cfg.blur_faces == "none":
            return
        # `others`: the people alerts have named stay visible from their alert on; everyone else is pixelated
        blur = faces_to_blur(self.cfg.blur_faces, faces.p_protected, self.cfg.class_threshold, faces.track_ids,
                             self.alerted)
        pixelate_faces(frame, faces.boxes[blur])

    def _housekeeping(self):
        """Live sources: the report rewritten and old runs pruned now and then, by the wall clock."""
        if self.report:
            self.report.poll()
        if self.next_retention is not None and time.monotonic() >= self.next_retention:
            self.next_retention = time.monotonic() + RETENTION_EVERY_S
            prune_old_runs(self.cfg)

    def write_manifest(self, state):
        from .model_registry import describe_models

        s, cfg = self.summary, self.cfg
        write_manifest(cfg.output_path, source=s.source, camera=self.info.stem, live=self.info.live,
                       state=state, started=iso(self.started), ended=None if state == "running" else iso(now()),
                       fps=float(self.fps), width=self.info.width, height=self.info.height, frames=s.frames,
                       faces=s.faces, protected=s.protected, alerts=self.monitor.count,
                       uncertain=self.saver.saved if self.saver else 0, people=self.people.seen(),
                       recording=Path(cfg.output_path).name,
                       models=describe_models(cfg.detector_model_path, cfg.mtcnn_model_path,
                                              Path(DEFAULT_CLASSIFIER).parent),
                       settings={k: getattr(cfg, k) for k in ("alert_threshold", "alert_frames", "min_faces",
                                                              "alert_cooldown", "class_threshold", "blur_faces",
                                                              "retention_days")})

    def _judge(self, index, time_s, faces):
        if self.cfg.alert_rule == "frame":
            unprotected = faces.track_ids[faces.p_protected < faces.threshold]
            return self.monitor.update(index, time_s, faces.total, faces.protected, self.people, unprotected)
        return self.monitor.update(index, time_s, faces.total, faces.protected, self.people)

    def _condition_holds(self, counts):
        """Whether what raised the alert is still so: the frame rule's streak goes on, or too few of the
        decided people in view (`counts`: this frame's People.counts()) are protected."""
        if self.cfg.alert_rule == "frame":
            return self.monitor.streak > 0
        return self.monitor.holds(counts["protected"], counts["protected"] + counts["unprotected"])

    def _draw(self, frame, faces, alert, counts):
        """counts: the people counts when the frame was seen (a clip's lead-in is drawn later)."""
        if self.cfg.alert_rule == "frame":
            draw_faces(frame, faces.boxes, faces.p_protected, self.cfg.class_threshold)
            draw_banner(frame, faces.protected, faces.total, alert=alert)
            return
        draw_people(frame, faces.boxes, faces.p_protected, faces.track_ids, self.people, self.cfg.class_threshold)
        draw_banner(frame, counts["protected"], counts["protected"] + counts["unprotected"], alert=alert,
                    what="people protected")

    def close(self, failed):
        """Close every output, each even when another fails (the first error is raised after)."""
        s = self.summary
        s.seconds = time.perf_counter() - self.start
        s.cpu_seconds = time.process_time() - self.cpu_start
        s.people = self.people.seen()
        s.alerts, s.uncertain = self.monitor.count, self.saver.saved if self.saver else 0
        errors = []
        for closer in (self.writer and self.writer.close, self.clips and self.clips.close, self.events.close,
                       self.timeline.close, lambda: self.write_manifest("interrupted" if failed else "finished"),
                       self.report and self.report.close,  # after the video: its frames are the thumbnails
                       self.voice and (lambda: self.voice.close(timeout=0.5 if failed else 5.0)),
                       self.display and self.display.close):
            if closer:
                try:
                    closer()
                except Exception as e:
                    errors.append(e)
        s.clips = self.clips.clips if self.clips else 0
        if not self.cfg.quiet and not errors:
            try:
                print(s.table(), file=sys.stderr if failed else sys.stdout)
            except OSError:  # no terminal any more (SIGHUP)
                pass
        if errors:
            raise errors[0]


def _limit(frames, max_frames):
    for i, frame in enumerate(frames):
        if max_frames is not None and i >= max_frames:
            return
        yield frame


def _batches(frames, size):
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _no_interrupts():
    """Hold stop signals while outputs are closed; one that came meanwhile is raised afterwards."""
    pending = []
    with handling_signals(STOP_SIGNALS, lambda signum, frame: pending.append(signum)):
        yield
    if pending and sys.exc_info()[0] is None:
        raise Interrupted(pending[0])


class Display:
    """A window showing the annotated frames (press q to stop). OpenCV's window if this OpenCV has one,
    else Tk; without a screen, a warning and no window."""

    def __init__(self, warn):
        import os

        self.warn, self.backend = warn, None
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            warn("--display: no screen here (DISPLAY is not set); running without a window")
            return
        for backend in (_CvWindow, _TkWindow):
            try:
                self.backend = backend()
                return
            except Exception as e:  # no GUI support in this build
                last = e
        warn(f"--display: no window support ({last}); install opencv-python for a window")

    def show(self, frame):
        return self.backend.show(frame) if self.backend else True

    def close(self):
        if self.backend:
            self.backend.close()


class _CvWindow:
    name = "cctv mask detector (q to stop)"

    def __init__(self):
        import cv2

        self.cv2 = cv2
        cv2.namedWindow(self.name, cv2.WINDOW_NORMAL)  # raises cv2.error on headless builds

    def show(self, frame):
        self.cv2.imshow(self.name, self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2BGR))
        return (self.cv2.waitKey(1) & 0xFF) != ord("q")

    def close(self):
        self.cv2.destroyWindow(self.name)


class _TkWindow:
    def __init__(self):
        import tkinter

        from PIL import ImageTk

        self.ImageTk = ImageTk
        self.root = tkinter.Tk()
        self.root.title("cctv mask detector (q to stop)")
        self.label = tkinter.Label(self.root)
        self.label.pack()
        self.stopped = False
        self.root.bind("q", lambda _: setattr(self, "stopped", True))
        self.root.protocol("WM_DELETE_WINDOW", lambda: setattr(self, "stopped", True))

    def show(self, frame):
        from PIL import Image

        self.photo = self.ImageTk.PhotoImage(Image.fromarray(frame))
        self.label.configure(image=self.photo)
        self.root.update()
        return not self.stopped

    def close(self):
        self.root.destroy()
