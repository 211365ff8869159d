"""Model versions and the 'current' pointer.

    models/
      detector.pt, finetuned_mtcnn.pt      hand-trained models (the fallback when no version is current)
      versions/v0003/detector.pt           every candidate the active-learning loop made, kept with
      versions/v0003/mtcnn.pt              its evaluation (metrics.json: promoted or rejected, and why)
      versions/v0003/metrics.json
      current.json                         {"version": "v0003", "detector": ..., "mtcnn": ...}

A version folder appears whole (built as `.v0003.partial/`, renamed when complete); `current.json` is
replaced by rename. `current_model_paths(models_dir)` is what `cctv_mask_detector.py` uses by default.
A broken `current.json` (unreadable, or not the form above) is a UserError, never a silent fallback to the
hand-trained models; `active_learning.py run` repairs it from the last promoted version.
"""
import json
import re
import sys
import time
from pathlib import Path

from .atomic import write_json
from .errors import UserError

CURRENT_FILE = "current.json"
VERSIONS_DIR = "versions"
FALLBACK_CLASSIFIER = "detector.pt"
VERSION_NAME = re.compile(r"^v(\d{4,})$")


def version_name(number: int) -> str:
    return f"v{number:04d}"


def versions_dir(models_dir) -> Path:
    return Path(models_dir) / VERSIONS_DIR


def list_versions(models_dir) -> list:
    """Committed versions, oldest first: [(name, folder)]."""
    root = versions_dir(models_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := VERSION_NAME.match(p.name))]
    return [(p.name, p) for _, p in sorted(found)]


def next_version_number(models_dir) -> int:
    """One above every committed or partial version's number."""
    root = versions_dir(models_dir)
    numbers = [0]
    if root.is_dir():
        for p in root.iterdir():
            m = VERSION_NAME.match(p.name.lstrip(".").split(".")[0])
            if m:
                numbers.append(int(m.group(1)))
    return max(numbers) + 1


def read_metrics(version_dir) -> dict:
    try:
        return json.loads((Path(version_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


REPAIR_HINT = ("`active_learning.py run` repairs it from the last promoted version; or point it at a version "
               "by hand, or pass --detector_model_path")


def read_pointer(models_dir) -> dict | None:
    """The pointer's content, None when there is none; UserError naming the file when it is broken."""
    path = Path(models_dir) / CURRENT_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e.__class__.__name__}: {str(e)[:120]}); {REPAIR_HINT}") from None
    problem = _pointer_problem(doc)
    if problem:
        raise UserError(f"{path}: {problem}; {REPAIR_HINT}")
    return doc


def _pointer_problem(doc) -> str | None:
    if not isinstance(doc, dict):
        return f"not a JSON object but a {type(doc).__name__}"
    if not isinstance(doc.get("detector"), str) or not doc["detector"]:
        return f"'detector' must be a checkpoint path (a string), got {doc.get('detector')!r}"
    if doc.get("mtcnn") is not None and (not isinstance(doc["mtcnn"], str) or not doc["mtcnn"]):
        return f"'mtcnn' must be a checkpoint path (a string) or null, got {doc['mtcnn']!r}"
    if doc.get("version") is not None and not isinstance(doc["version"], str):
        return f"'version' must be a version name (a string), got {doc['version']!r}"
    return None


def read_current(models_dir) -> dict | None:
    """The pointer's content when it is valid and its files exist, None when there is no pointer or its files
    are gone; UserError when it is broken."""
    doc = read_pointer(models_dir)
    if doc is None or _missing_files(models_dir, doc):
        return None
    return doc


def _missing_files(models_dir, doc) -> list:
    files = [doc["detector"]] + ([doc["mtcnn"]] if doc.get("mtcnn") else [])
    return [f for f in files if not (Path(models_dir) / f).is_file()]


def current_model_paths(models_dir="models"):
    """(classifier checkpoint, MTCNN checkpoint or None = pretrained) that are live now: the current
    version's, or `models/detector.pt` and the pretrained MTCNN when no version was promoted yet (or the
    pointer's files are gone: said on stderr). UserError when `current.json` is broken."""
    models_dir = Path(models_dir)
    doc = read_pointer(models_dir)
    if doc is not None and _missing_files(models_dir, doc):
        print(f"warning: {models_dir / CURRENT_FILE} points at {', '.join(_missing_files(models_dir, doc))}, "
              f"which is missing: using {models_dir / FALLBACK_CLASSIFIER} and the pretrained MTCNN", file=sys.stderr)
        doc = None
    if doc is None:
        return str(models_dir / FALLBACK_CLASSIFIER), None
    mtcnn = str(models_dir / doc["mtcnn"]) if doc.get("mtcnn") else None
    return str(models_dir / doc["detector"]), mtcnn


def current_version(models_dir) -> str | None:
    doc = read_current(models_dir)
    return doc.get("version") if doc else None


def last_promoted_version(models_dir):
    """The newest committed version whose evaluation promoted it, as (name, folder), or None."""
    promoted = [(n, f) for n, f in list_versions(models_dir) if read_metrics(f).get("decision") == "promoted"]
    return promoted[-1] if promoted else None


def set_current(models_dir, version_dir):
    """Point `current.json` at a committed version folder (temp file + rename: readers see old or new)."""
    models_dir, version_dir = Path(models_dir), Path(version_dir)
    rel = version_dir.relative_to(models_dir).as_posix()
    mtcnn = f"{rel}/mtcnn.pt" if (version_dir / "mtcnn.pt").is_file() else None
    write_json(models_dir / CURRENT_FILE, {
        "version": version_dir.name, "detector": f"{rel}/detector.pt", "mtcnn": mtcnn,
        "promoted": time.strftime("%Y-%m-%dT%H:%M:%S")})


def describe_models(classifier_path, mtcnn_path=None, models_dir="models") -> dict:
    """What a run used, for its manifest and report: each model's file and version (the registry's version
    name when the file is one of `models/versions/`, else "hand-trained" / "pretrained")."""
    models_dir = Path(models_dir)
    doc = read_current(models_dir) or {}

    def version_of(path, fallback):
        if not path:
            return {"path": None, "version": fallback}
        path = Path(path)
        try:
            rel = path.resolve().relative_to(versions_dir(models_dir).resolve())
            version = rel.parts[0]
        except ValueError:
            version = fallback
        return {"path": str(path), "version": version,
                "current": bool(doc) and version == doc.get("version")}

    return {"detector": version_of(classifier_path, "hand-trained"),
            "mtcnn": version_of(mtcnn_path, "pretrained" if not mtcnn_path else "fine-tuned by hand"),
            "current_version": doc.get("version"), "promoted": doc.get("promoted")}
