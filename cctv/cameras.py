"""Several sources for one job: `--footage_path A B C` (a folder is its files, an archive) or `--cameras
cameras.yaml`. Each becomes a named camera with its own JobConfig (source, output, thresholds).

cameras.yaml:

    defaults:                 # optional: any cctv_mask_detector.py setting, for every camera
      alert_threshold: 0.75
    cameras:
      - name: front_door      # optional (default: the source's stem); names the outputs
        source: rtsp://10.0.0.5/stream1
        output_dir: runs/front   # optional (default: --output_path)
        alert_frames: 3
      - source: recordings/monday.mp4
"""
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .errors import UserError
from .pipeline import JobConfig, default_output_path, validate
from .video import URL_SCHEMES, VIDEO_SUFFIXES

DEFAULT_OUTPUT_DIR = "runs/cctv"
DETECTOR_WIDE = {"detector_model_path", "mtcnn_model_path", "device", "thresholds", "min_face_size", "threads"}
JOB_WIDE = {"footage_path", "output_path", "demo", "display", "quiet", "cameras", "ray_address", "status_json",
            "checkpoint_frames", "max_restarts"}
PER_CAMERA = {f.name for f in fields(JobConfig)} - JOB_WIDE - DETECTOR_WIDE


@dataclass
class Camera:
    name: str
    cfg: JobConfig

    @property
    def live(self):
        """Cameras and URLs run as long-lived actors; files (archives) as tasks."""
        return is_live(self.cfg.footage_path)


def is_live(spec):
    spec = str(spec)
    return spec.isdigit() or spec.lower().startswith(URL_SCHEMES)


def expand_sources(paths):
    """Files and URLs as given; a folder is its video files, sorted."""
    out = []
    for spec in paths:
        p = Path(str(spec))
        if not is_live(spec) and p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES)
            if not files:
                raise UserError(f"{p}: no video files in this folder")
            out += [str(f) for f in files]
        else:
            out.append(str(spec))
    return out


def cameras_from_paths(paths, base: JobConfig, output_dir=None):
    entries = [{"source": s} for s in expand_sources(paths)]
    return _cameras(entries, base, output_dir)


def cameras_from_yaml(path, base: JobConfig, output_dir=None):
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cameras"), list) or not doc["cameras"]:
        raise UserError(f"{path}: needs a 'cameras:' list (see cctv/cameras.py)")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: 'defaults' must be a mapping of settings")
    base = replace(base, **_settings(path, "defaults", defaults))
    entries = []
    for i, entry in enumerate(doc["cameras"]):
        if not isinstance(entry, dict) or "source" not in entry:
            raise UserError(f"{path}: camera {i + 1} needs a 'source'")
        entries.append(entry)
    return _cameras(entries, base, output_dir, yaml_path=path)


def _settings(path, where, mapping):
    unknown = sorted(set(mapping) - PER_CAMERA)
    if unknown:
        shared = [k for k in unknown if k in DETECTOR_WIDE]
        why = f" ({', '.join(shared)}: the detectors are shared; set on the command line)" if shared else ""
        raise UserError(f"{path}: {where}: unknown setting(s) {', '.join(unknown)}{why}")
    return mapping


def _cameras(entries, base, output_dir, yaml_path=None):
    cameras, names = [], set()
    for i, entry in enumerate(entries):
        entry = dict(entry)
        source = str(entry.pop("source"))
        name = str(entry.pop("name", None) or Path(default_output_path(replace(base, footage_path=source))).stem)
        folder = entry.pop("output_dir", None) or output_dir or DEFAULT_OUTPUT_DIR
        settings = _settings(yaml_path, f"camera {i + 1}", entry) if yaml_path else entry
        unique, n = name, 2
        while unique in names:
            unique, n = f"{name}_{n}", n + 1
        names.add(unique)
        cfg = replace(base, **settings, footage_path=source, output_path=str(Path(folder) / f"{unique}.mp4"))
        validate(cfg)
        cameras.append(Camera(unique, cfg))
    return cameras

