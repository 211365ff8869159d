"""Labels from Superb AI Suite (every export generation, `spb download`, our pre-labels), COCO, Pascal
VOC and YOLO, read into one form: `LabeledImage(image_path, width, height, boxes, classes, key)` with
classes 'protected' | 'unprotected'.

    ls = load_labels(labels_dir, metadata_dir=None, images_dir=None, class_map=None)
    for item in ls.items: ...
    print(ls.report)  # read / skipped (why) / clipped

A problem with one label (malformed JSON, its image missing, a path escaping the folder, an object
that is not a box) skips that label and is counted in `ls.report`; a problem with the whole input (no
such path, no recognisable format, an empty export, an unknown class name, an unsafe zip, nothing
readable at all) raises UserError naming the file."""
import tempfile
from pathlib import Path

from ..errors import UserError
from .classes import (CLASSES, DEFAULT_CLASS_MAP, add_class_map_argument, add_labeled_frames_arguments, build_class_map,
                      parse_class_map)
from .coco import find_coco_file, read_coco
from .model import LabeledImage, LabelSet, LoadReport
from .safepath import extract_zip
from .suite import (load_label_interface, looks_like_sidecars, read_export, read_sidecars, to_suite_label,
                    write_suite_label)
from .voc import is_voc, read_voc
from .yolo import NAME_FILES, read_yolo

__all__ = [
    "load_labels", "LabeledImage", "LabelSet", "LoadReport", "to_suite_label", "write_suite_label",
    "DEFAULT_CLASS_MAP", "CLASSES", "parse_class_map", "build_class_map", "load_label_interface",
    "FORMATS_HELP", "add_class_map_argument", "add_labeled_frames_arguments",
]

FORMATS_HELP = ("Superb AI Suite export (meta/ + labels/, any generation), `spb download` folder, "
                "images with <image>.json Suite labels, a .zip of those, COCO JSON, Pascal VOC XML, YOLO txt")


def load_labels(labels_dir, metadata_dir=None, images_dir=None, class_map=None) -> LabelSet:
    """Read labels, detecting the format. `labels_dir`: an export folder, a `labels/` folder (with
    `metadata_dir` = the export's `meta/` folder, as the write-up's --labels_dir/--metadata_dir), a .zip,
    a COCO .json or a VOC .xml. `images_dir`: where the images are when the export has none.
    `class_map`: {tool class name: 'protected'|'unprotected'|'ignore'} over DEFAULT_CLASS_MAP, or the
    --class_map flag's text ('helmet=protected,...' or a JSON file)."""
    source = Path(labels_dir)
    if not source.exists():
        raise UserError(f"{source}: no such labels file or folder")
    if metadata_dir is not None and not Path(metadata_dir).is_dir():
        raise UserError(f"{metadata_dir}: no such metadata folder")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise UserError(f"{images_dir}: no such images folder")
    table = build_class_map(parse_class_map(class_map) if isinstance(class_map, (str, Path)) else class_map)
    report = LoadReport(source=str(source))
    keepalive = None
    try:
        if source.is_file() and source.suffix.lower() == ".zip":
            keepalive = tempfile.TemporaryDirectory(prefix="cctv-labels-")
            source = _single_child(extract_zip(source, keepalive.name))
        items = _read(source, metadata_dir, images_dir, table, report)
        if not items:
            raise UserError(report.details() + "\nno usable labels: " + (
                "every label was skipped" if report.skipped else "the export is empty"))
    except BaseException:
        if keepalive is not None:
            keepalive.cleanup()
        raise
    return LabelSet(items, report, keepalive)


def _read(source, metadata_dir, images_dir, table, report):
    if metadata_dir is not None:
        return read_export(metadata_dir, source, images_dir, Path(metadata_dir).parent, table, report)
    if source.is_file():
        return _read_file(source, images_dir, table, report)
    if (source / "meta").is_dir() and (source / "labels").is_dir():
        return read_export(source / "meta", source / "labels", images_dir, source, table, report)
    if source.name == "labels" and (source.parent / "meta").is_dir():
        return read_export(source.parent / "meta", source, images_dir, source.parent, table, report)
    if looks_like_sidecars(source):  # the images are beside their labels: images_dir is not needed
        report.format = "spb download" if (source / "project.json").is_file() else "Suite labels beside images"
        return read_sidecars(source, table, report)
    coco = find_coco_file(source)
    if coco is not None:
        return read_coco(coco, images_dir, table, report)
    if any(is_voc(p) for p in _first_few(source, "*.xml")):
        return read_voc(source, images_dir, table, report)
    if any(p.name not in NAME_FILES for p in _first_few(source, "*.txt")):
        return read_yolo(source, images_dir, table, report)
    if not any(source.iterdir()):
        raise UserError(f"{source}: the folder is empty: no labels to read")
    raise UserError(f"{source}: no labels found in a format I know ({FORMATS_HELP})")


def _read_file(path, images_dir, table, report):
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_coco(path, images_dir, table, report)
    if suffix == ".xml":
        return read_voc(path, images_dir, table, report)
    raise UserError(f"{path}: not a labels file I know ({FORMATS_HELP})")


def _first_few(folder, pattern, limit=50):
    found = []
    for path in folder.rglob(pattern):
        found.append(path)
        if len(found) >= limit:
            break
    return found


def _single_child(folder):
    """An archive holding one top-level folder (the usual zip of a folder) is read from inside it."""
    children = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    return children[0] if len(children) == 1 and children[0].is_dir() else folder
