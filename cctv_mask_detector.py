"""The main job: watch footage or a live camera, box faces green (protected) or red (unprotected), write an
annotated H.264 video, alert (events file, snapshots, voice) when under 75% of the people in view wear a mask
(each face tracked, one decision per person), and collect low-confidence frames for labeling.

    python cctv_mask_detector.py --footage_path ../shared/data/footage/four_people_masking.mp4 \\
        --output_path runs/cctv/four_people.mp4
    python cctv_mask_detector.py --footage_path 0 --output_path runs/cctv/camera.mp4 --display
    python cctv_mask_detector.py --demo
    python cctv_mask_detector.py --footage_path 0 --report --blur_faces others --retention_days 14
    python cctv_mask_detector.py --footage_path a.mp4 b.mp4 rtsp://cam3/stream --output_path runs/office  # on Ray
    python cctv_mask_detector.py --cameras cameras.yaml --ray_address auto   # on a Ray cluster
"""
import os

# The job sizes its threads to the cores other work leaves free (cctv.threads.ThreadGovernor), so its OpenMP threads
# may spin while they wait: libgomp's default, 20-35% faster on an idle machine than the passive waits that
# `import cctv` chooses for the other scripts. Set before that import; a policy the user set wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "300000")

from dataclasses import replace  # noqa: E402
from pathlib import Path

from cctv.cli import (add_class_threshold, add_device, add_thresholds, add_threads, make_parser, parse_thresholds,
                      settings_defaults)
from cctv.errors import UserError, cli_main
from cctv.model_registry import current_model_paths
from cctv.pipeline import DEFAULT_CLASSIFIER, JobConfig, run_job
from cctv.threads import set_threads

D = settings_defaults(JobConfig)  # the flags' defaults are JobConfig's


def parse_opt(argv=None):
    p = make_parser(__doc__)
    src = p.add_argument_group("input and output")
    src.add_argument("--footage_path", nargs="+", default=D.footage_path,
                     help="video file (mp4/avi/mov/mkv/gif), folder of footage, camera index (0) or stream URL "
                          "(rtsp://, http://); several: one camera each, on Ray (a folder is then one camera per "
                          "file)")
    src.add_argument("--cameras", default=D.cameras,
                     help="cameras.yaml: per camera a source, name, output_dir and settings (runs on Ray; see "
                          "cctv/cameras.py)")
    src.add_argument("--demo", action="store_true", help="run on the embedded demo clip (generated, no download); "
                                                         "also mixes the spoken alert into the video")
    src.add_argument("--output_path", default=D.output_path,
                     help="annotated .mp4 (default runs/cctv/<source>.mp4; runs/demo/demo.mp4 with --demo); alerts go "
                          "to <output_path>.events.jsonl")
    src.add_argument("--max_frames", type=int, default=D.max_frames, help="stop after this many frames")
    src.add_argument("--record", default=D.record, metavar="{all,alerts,none}",
                     help="all: the whole annotated video; alerts: a clip around each alert "
                          "(<output stem>.clips/alertNNNN.mp4, named in the event line); none: no video "
                          "(default: all for footage files and folders, alerts for cameras and streams)")
    src.add_argument("--clip_before_s", type=float, default=D.clip_before_s,
                     help="--record alerts: seconds of video before each alert")
    src.add_argument("--clip_after_s", type=float, default=D.clip_after_s,
                     help="--record alerts: seconds of video after each alert (an alert in a clip extends it)")
    src.add_argument("--reconnect_attempts", type=int, default=D.reconnect_attempts,
                     help="live sources: reconnect attempts before giving up")
    src.add_argument("--reconnect_delay", type=float, default=D.reconnect_delay,
                     help="live sources: first reconnect delay in seconds (doubles each attempt)")
    m = p.add_argument_group("models")
    m.add_argument("--detector_model_path", default=None,
                   help="mask classifier checkpoint (default: the current version in models/current.json, "
                        f"else {D.detector_model_path})")
    m.add_argument("--mtcnn_model_path", default=D.mtcnn_model_path,
                   help="fine-tuned MTCNN checkpoint (default: the current version's when --detector_model_path "
                        "is not given, else the pretrained weights)")
    add_device(m, D.device)
    m.add_argument("--batch_size", type=int, default=D.batch_size,
                   help="frames per detection batch (default 4 on cpu, 32 on cuda)")
    add_threads(m, D.threads, "torch CPU threads at most (0: the cores this process may use); fewer while other work "
                              "keeps cores busy")
    m.add_argument("--fixed_threads", action="store_true",
                   help="keep --threads even while other work keeps cores busy (a machine of its own)")
    add_thresholds(m, D.thresholds, "MTCNN's PNet, RNet and ONet thresholds (default: those the classifier was "
                                    "trained with)")
    m.add_argument("--min_face_size", type=int, default=D.min_face_size,
                   help="smallest face in pixels (default: the classifier's training setting)")
    m.add_argument("--motion", default=D.motion, metavar="{auto,on,off}",
                   help="detect only where the picture changed (plus where faces were, and the whole frame every "
                        "--keyframe_s); auto: on for a still camera, off while the whole view moves")
    m.add_argument("--keyframe_s", type=float, default=D.keyframe_s,
                   help="with --motion: a whole-frame detection at least this often (seconds of video)")
    add_class_threshold(m, D.class_threshold)
    m.add_argument("--track_threshold", type=float, default=D.track_threshold,
                   help="MTCNN probability at which a face starts a track; weaker faces (below it, with "
                        "lowered --thresholds) only keep existing tracks going")
    a = p.add_argument_group("alerts")
    a.add_argument("--alert_threshold", type=float, default=D.alert_threshold,
                   help="alert when protected/total is below this")
    a.add_argument("--alert_rule", choices=("person", "frame"), default=D.alert_rule,
                   help="person: over tracked people and their decided states, once per person; frame: the "
                        "write-up's per-frame ratio of faces")
    a.add_argument("--exit_zone", default=D.exit_zone, metavar="X1,Y1,X2,Y2[,...]",
                   help="pixels: 2 points = a line people cross on their way out (exit side: right of the "
                        "line walking from the 1st point to the 2nd), 3+ = a polygon; alerts only name people "
                        "heading out")
    a.add_argument("--min_faces", type=int, default=D.min_faces,
                   help="people (person rule) or faces (frame rule) with a known state needed to judge")
    a.add_argument("--alert_frames", type=int, default=D.alert_frames,
                   help="frame rule: consecutive frames under the threshold before an alert")
    a.add_argument("--alert_cooldown", type=float, default=D.alert_cooldown,
                   help="frame rule: seconds of quiet after an alert")
    a.add_argument("--alert_message", default=D.alert_message, help="what the voice says")
    a.add_argument("--alert_audio", action="store_true", help="mix the spoken message into the output video "
                                                              "at each alert")
    a.add_argument("--no_voice", action="store_true", help="don't speak alerts")
    a.add_argument("--display", action="store_true", help="show the annotated frames in a window (q stops)")
    u = p.add_argument_group("low-confidence frames (active learning)")
    u.add_argument("--uncertain_frames_dir", default=D.uncertain_frames_dir,
                   help="save uncertain frames (JPEG + <frame>.jpg.json Suite label) here")
    u.add_argument("--uncertain_prob_band", type=float, nargs=2, default=D.uncertain_prob_band,
                   metavar=("LO", "HI"), help="a face whose MTCNN probability is in [LO, HI) is uncertain")
    u.add_argument("--uncertain_margin", type=float, default=D.uncertain_margin,
                   help="a face whose P(protected) is within this of 0.5 is uncertain")
    u.add_argument("--uncertain_max_per_second", type=float, default=D.uncertain_max_per_second,
                   help="at most this many uncertain frames per second of video")
    rp = p.add_argument_group("report and privacy")
    rp.add_argument("--report", action="store_true",
                    help="write the compliance report <output_path>.report.html at the end (see report.py)")
    rp.add_argument("--report_every_s", type=float, default=D.report_every_s,
                    help="live sources: rewrite the report this often (seconds)")
    rp.add_argument("--blur_faces", choices=("none", "all", "others"), default=D.blur_faces,
                    help="pixelate faces in the video, clips and snapshots (all: every face; others: all but the "
                         "alert's own person; none: faces as they are); frames saved for labeling stay unblurred")
    rp.add_argument("--retention_days", type=float, default=D.retention_days,
                    help="remove runs (recordings, snapshots, clips, events, timelines, reports) older than this "
                         "from the output's folder, at start (and hourly for live sources)")
    r = p.add_argument_group("several cameras (Ray)")
    r.add_argument("--ray_address", default=D.ray_address,
                   help="join this Ray cluster ('auto', ray://host:10001); default with several sources: Ray embedded "
                        "on this machine")
    r.add_argument("--status_json", default=D.status_json,
                   help="keep the live per-camera status here as JSON (rewritten every second)")
    r.add_argument("--checkpoint_frames", type=int, default=D.checkpoint_frames,
                   help="frames between a camera's checkpoints (the most a restart redoes)")
    r.add_argument("--max_restarts", type=int, default=D.max_restarts,
                   help="restarts of a camera that dies before the job gives it up")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p.parse_args(argv)


def run(on_frame=None, **kwargs):
    """Programmatic entry point: run(footage_path=..., output_path=..., ...) -> JobSummary, with JobConfig's
    fields as keywords (a keyword it lacks is a TypeError naming it). `on_frame(job, faces)` is called after
    each frame (the job's `people` and each face's `track_ids` are there)."""
    cfg = JobConfig(**kwargs)
    cfg.thresholds = parse_thresholds(cfg.thresholds)  # P R O or P,R,O
    if not cfg.detector_model_path or "detector_model_path" not in kwargs:  # the live models, as promoted
        cfg.detector_model_path, mtcnn = current_model_paths(Path(DEFAULT_CLASSIFIER).parent)
        cfg.mtcnn_model_path = cfg.mtcnn_model_path or mtcnn
    if isinstance(cfg.footage_path, (list, tuple)):
        cfg.footage_path = cfg.footage_path[0] if len(cfg.footage_path) == 1 else list(cfg.footage_path)
    if isinstance(cfg.footage_path, list) or cfg.cameras or cfg.ray_address:
        return run_many(cfg)
    if cfg.demo:
        cfg.alert_audio = True
    set_threads(cfg.threads, cfg.device)  # here, not in the library: a caller of run_job sets its own
    return run_job(cfg, on_frame)


def run_many(cfg: JobConfig):
    """Several cameras on Ray: output_path is a folder (one <camera>.mp4 each, events.jsonl, summary.json)."""
    from cctv.cameras import DEFAULT_OUTPUT_DIR, cameras_from_paths, cameras_from_yaml

    if cfg.demo or cfg.display:
        raise UserError("--demo and --display take one source, without Ray")
    if bool(cfg.footage_path) == bool(cfg.cameras):
        raise UserError("give the sources with --footage_path or --cameras, one of them")
    output_dir = cfg.output_path or DEFAULT_OUTPUT_DIR
    if Path(output_dir).suffix.lower() == ".mp4":
        raise UserError(f"{output_dir}: with several cameras --output_path is a folder")
    if cfg.checkpoint_frames < 1 or cfg.max_restarts < 0:
        raise UserError("--checkpoint_frames must be 1 or more and --max_restarts 0 or more")
    paths = cfg.footage_path if isinstance(cfg.footage_path, list) else [cfg.footage_path] if cfg.footage_path else None
    base = replace(cfg, footage_path=None, output_path=None)
    cams = (cameras_from_paths(paths, base, output_dir) if paths else cameras_from_yaml(cfg.cameras, base, output_dir))
    from cctv.ray_job import run_cameras  # Ray only now: the single-source job never pays its import or start-up

    return run_cameras(cams, base, output_dir, cfg.ray_address, cfg.status_json, cfg.quiet, cfg.checkpoint_frames,
                       cfg.max_restarts)


@cli_main
def main(opt):
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
