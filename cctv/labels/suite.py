"""Superb AI Suite labels: the exports (2020 `shape.box`, current `annotation.coord`, pre-0.4 'siesta'
top-level `objects`), the `spb download` layout, and the label files `spb upload dataset --include-label`
uploads (our pre-labels).

What spb-cli 0.19.4 does with pre-labels (spb/cli_core/commands/label_data.py, utils.py):
- every `*.json` under the upload folder is a label; its data key is its path relative to the folder
  minus `.json`, so the label of `frame.jpg` is `frame.jpg.json` beside it;
- it reads only the file's `result` (`{"objects": [...], "categories": {"properties": []}}`) and builds
  the label info with the project's label interface: each object needs `id`, `class_id`, `class_name`,
  `annotation_type` ('box'), `annotation.coord` {x, y, width, height} and `properties`; a class_name
  the project lacks fails that label;
- it opens each label by the path relative to the folder, so `spb upload dataset` must run from inside
  the frames folder (with `--dir` elsewhere every label fails: "Label json file is not existed.");
- after a successful upload it overwrites the file with the label as the Suite stored it.
`spb download` writes `project.json` and `<dataset>/<data_key>` + `<dataset>/<data_key>.json` (the
label with `data_key`, `dataset`, `result`)."""
import uuid
from pathlib import Path

import numpy as np

from ..atomic import write_json
from ..errors import UserError
from .classes import CLASSES
from .common import first_existing, image_size, is_image, positive_size, read_json
from .model import BadLabel, make_item, skipping
from .safepath import UnsafePath, is_safe_relative, safe_join

DEFAULT_COLORS = {"protected": "#00FF00", "unprotected": "#FF0000"}
_ID_NAMESPACE = uuid.UUID("5b0f5f32-7a4c-4d3e-9a55-1c7f2f0c6a10")


# --- reading ---------------------------------------------------------------------------------------
def parse_objects(doc):
    """(boxes x1y1x2y2, class names, {why ignored: n}) from one Suite label document, any generation."""
    if not isinstance(doc, dict):
        raise BadLabel("not a Suite label", "expected a JSON object")
    if "result" in doc:
        result = doc["result"]
        if result is None:
            raise BadLabel("not labeled yet (empty result)")
        objects = result.get("objects", []) if isinstance(result, dict) else None
    else:
        objects = doc.get("objects")  # pre-0.4 'siesta'
    if not isinstance(objects, list):
        raise BadLabel("not a Suite label", "no result.objects[] or objects[]")
    boxes, names, ignored = [], [], {}
    for obj in objects:
        try:
            name = _first(obj, "class_name", "class", "className")
            kind, coord = _shape(obj)
            if kind != "box":
                ignored[f"{kind} objects"] = ignored.get(f"{kind} objects", 0) + 1
                continue
            x, y = float(coord["x"]), float(coord["y"])
            w, h = float(coord["width"]), float(coord["height"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise BadLabel("malformed object", f"{obj!r:.120} ({e.__class__.__name__}: {e})") from None
        if name is None:
            raise BadLabel("malformed object", f"no class name in {obj!r:.120}")
        boxes.append((x, y, x + w, y + h))
        names.append(name)
    return boxes, names, ignored


def suite_generation(doc) -> str:
    if isinstance(doc, dict) and "result" not in doc and "objects" in doc:
        return "Suite export (pre-0.4 siesta)"
    objects = ((doc or {}).get("result") or {}).get("objects") or [{}]
    return "Suite export (2020)" if "shape" in objects[0] else "Suite export"


def _first(obj, *keys):
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _shape(obj):
    if "shape" in obj:  # 2020: {"shape": {"box": {...}}}
        kind, coord = next(iter(obj["shape"].items()))
        return kind, coord
    kind = _first(obj, "annotation_type", "annotationType") or "box"
    return kind, obj["annotation"]["coord"]


def _add(items, report, table, image_path, size, doc, key, label_path):
    boxes, names, ignored = parse_objects(doc)
    for why, n in ignored.items():
        report.ignored[why] += n
    width, height = size or image_size(image_path)
    items.append(make_item(image_path, width, height, boxes, names, key, label_path, table, report))


def read_export(meta_dir, labels_dir, images_dir, export_root, table, report):
    """A Suite export: meta/<dataset>/<data_key>.json (with label_id) + labels/<label_id>.json.
    Images are looked up as <images_dir>/<data_key>, <images_dir>/<dataset>/<data_key> (or, without
    images_dir, beside the export as <export_root>/<dataset>/<data_key>)."""
    meta_files = sorted(p for p in Path(meta_dir).rglob("*.json") if p.is_file())
    if not meta_files:
        raise UserError(f"{meta_dir}: no <dataset>/<data_key>.json meta files: the export is empty")
    items = []
    for meta_path in meta_files:
        with skipping(report, meta_path, "malformed meta file"):
            meta = read_json(meta_path)
            data_key, dataset = str(meta["data_key"]), str(meta.get("dataset") or "")
            label_id = meta.get("label_id")
            if not label_id:
                raise BadLabel("not labeled (no label_id)")
            label_path = safe_join(labels_dir, f"{label_id}.json")
            if not label_path.is_file():
                raise BadLabel("label file missing", str(label_path))
            doc = read_json(label_path)
            report.format = report.format or suite_generation(doc)
            roots = [images_dir] if images_dir else [export_root]
            image_path = _find_image(roots, dataset, data_key)
            size = positive_size(meta.get("image_info") or {})
            _add(items, report, table, image_path, size, doc, f"{dataset}/{data_key}", label_path)
    return items


def _find_image(roots, dataset, data_key):
    key = data_key.lstrip("/")  # spb itself strips a leading '/' from data keys
    candidates = []
    for root in roots:
        candidates.append(safe_join(root, key))
        if dataset:
            candidates.append(safe_join(root, f"{dataset}/{key}"))
    found = first_existing(candidates)
    if found is None:
        raise BadLabel("image missing", "looked for " + ", ".join(str(c) for c in candidates))
    return found


def read_sidecars(root, table, report):
    """`spb download` output (project.json, <dataset>/<data_key> + <data_key>.json) or any folder of
    images with `<image>.json` Suite labels beside them (our pre-labels, low-confidence frames)."""
    root = Path(root)
    label_files = sorted(p for p in root.rglob("*.json") if p.is_file() and p != root / "project.json")
    if not label_files:
        raise UserError(f"{root}: no <data_key>.json label files: the download is empty")
    items = []
    for label_path in label_files:
        with skipping(report, label_path, "malformed label"):
            doc = read_json(label_path)
            data_key = doc.get("data_key") if isinstance(doc, dict) else None
            if data_key is not None and not is_safe_relative(str(data_key).lstrip("/")):
                raise UnsafePath(f"data_key '{data_key}' escapes the folder")
            relative = label_path.relative_to(root).as_posix()[: -len(".json")]
            image_path = safe_join(root, relative)
            if not is_image(image_path) or not image_path.is_file():
                raise BadLabel("image missing", f"no image {image_path} beside the label")
            _add(items, report, table, image_path, None, doc, relative, label_path)
    return items


def looks_like_sidecars(root) -> bool:
    root = Path(root)
    if (root / "project.json").is_file():
        return True
    return any(p.with_suffix("").is_file() and is_image(p.with_suffix("")) for p in root.rglob("*.json"))


# --- writing (pre-labels) --------------------------------------------------------------------------
def to_suite_label(boxes, classes, width, height, label_interface=None) -> dict:
    """The label JSON `spb upload dataset --include-label` uploads for one image: boxes (N,4) x1,y1,x2,y2
    pixels (clipped to width x height), classes 'protected'|'unprotected'. `label_interface` (the
    project's project.json, as `spb download` writes it) supplies the project's class ids and colors;
    without it the ids are fixed UUIDs derived from the class names."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) != len(classes):
        raise ValueError(f"{len(boxes)} boxes but {len(classes)} classes")
    project_classes = _project_classes(label_interface)
    objects = []
    for i, (box, name) in enumerate(zip(boxes, classes)):
        if name not in CLASSES:
            raise ValueError(f"class '{name}' is not one of {CLASSES}")
        x1, x2 = (float(np.clip(v, 0, width)) for v in sorted(box[0::2]))
        y1, y2 = (float(np.clip(v, 0, height)) for v in sorted(box[1::2]))
        class_id, color = project_classes.get(name, (str(uuid.uuid5(_ID_NAMESPACE, name)), DEFAULT_COLORS[name]))
        coord = {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1}
        object_id = uuid.uuid5(_ID_NAMESPACE, f"{i}:{name}:{x1}:{y1}:{x2}:{y2}")  # same frame -> same file
        objects.append({
            "id": str(object_id), "class_id": class_id, "class_name": name, "annotation_type": "box",
            "annotation": {"coord": coord, "meta": {"z_index": 1, "visible": True, "alpha": 1, "color": color}},
            "properties": [],
        })
    return {"result": {"objects": objects, "categories": {"properties": []}}}


def write_suite_label(path, boxes, classes, width, height, label_interface=None):
    """Write `to_suite_label(...)` to `path` atomically (`<image file name>.json` beside the image)."""
    write_json(path, to_suite_label(boxes, classes, width, height, label_interface))


def _project_classes(label_interface):
    if label_interface is None:
        return {}
    try:
        object_classes = label_interface["object_detection"]["object_classes"]
        table = {c["name"]: (c["id"], c.get("color") or DEFAULT_COLORS.get(c["name"], "#FFFF00"))
                 for c in object_classes if c.get("annotation_type", "box") == "box"}
    except (KeyError, TypeError) as e:
        raise UserError(f"project label interface: no object_detection.object_classes ({e})") from None
    missing = [name for name in CLASSES if name not in table]
    if missing:
        raise UserError(f"the Suite project has no box class {missing}; its box classes are "
                        f"{sorted(table)}: add 'protected' and 'unprotected' box classes to the project")
    return table


def load_label_interface(path):
    """The label interface from a project.json (written by `spb download`); UserError naming the file."""
    path = Path(path)
    try:
        return read_json(path)
    except BadLabel as e:
        raise UserError(f"{path}: {e}") from None
