"""YOLO txt labels: one `<image stem>.txt` per image, lines `class cx cy w h` normalised to 0..1.
Class names come from classes.txt (one per line) or data.yaml (`names:`), in the labels folder or
above it. Images: <images_dir>/<stem>.<ext>; without images_dir, beside the txt or in the sibling
`images` folder (the yolov5 `labels/` <-> `images/` layout)."""
import ast
import re
from pathlib import Path

from ..errors import UserError
from ..images import IMAGE_SUFFIXES
from .common import image_size
from .model import BadLabel, make_item, skipping

NAME_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
SLACK = 0.01  # rounding in exporters: a box may reach a hair past the image (it is clipped, and counted)


def find_names_file(folder):
    folder = Path(folder)
    for directory in (folder, folder.parent, folder.parent.parent):
        for name in NAME_FILES:
            if (directory / name).is_file():
                return directory / name
    return None


def read_names(path) -> dict:
    """{class index: name} from classes.txt / obj.names (one name a line) or data.yaml (`names:`)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".yaml":
        return dict(enumerate(line.strip() for line in text.splitlines() if line.strip()))
    names = _yaml_names(text, path)
    if not names:
        raise UserError(f"{path}: no `names:` list of classes")
    return names


def _yaml_names(text, path):
    """`names: [a, b]`, `names: {0: a, 1: b}`, `names:\n  - a\n  - b` or `names:\n  0: a\n  1: b` (the
    forms yolov5/ultralytics write; no YAML library here). A map's keys are class numbers, gaps kept."""
    match = re.search(r"^names:[ \t]*([\[{].*?[\]}])[ \t]*(#.*)?$", text, re.M | re.S)
    if match:
        flow = match.group(1)
        entries = [e.strip() for e in flow[1:-1].split(",") if e.strip()]
        if flow.startswith("["):
            try:  # quoted names may hold commas
                return {i: str(n) for i, n in enumerate(ast.literal_eval(flow))}
            except (ValueError, SyntaxError):
                return {i: _unquote(e) for i, e in enumerate(entries)}
        return dict(_numbered(e, path) for e in entries)
    block = re.search(r"^names:[ \t]*(#.*)?\n((?:[ \t]+.*\n?|[ \t]*\n)+)", text, re.M)
    if not block:
        return {}
    lines = [line.strip() for line in block.group(2).splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if all(line.startswith("-") for line in lines):
        return {i: _unquote(line[1:]) for i, line in enumerate(lines)}
    return dict(_numbered(line, path) for line in lines)


def _numbered(entry, path):
    index, sep, name = entry.partition(":")
    try:
        if not sep:
            raise ValueError
        number = int(_unquote(index))
        if number < 0:
            raise ValueError
    except ValueError:
        raise UserError(f"{path}: `names:` entry '{entry}' is not `<class number>: <name>` "
                        f"(class numbers are 0, 1, ...)") from None
    return number, _unquote(name)


def _unquote(text):
    return text.split(" #")[0].strip().strip("'\"")


def read_yolo(folder, images_dir, table, report):
    folder = Path(folder)
    txt_files = sorted(p for p in folder.rglob("*.txt") if p.name not in NAME_FILES)
    if not txt_files:
        raise UserError(f"{folder}: no YOLO .txt label files: the export is empty")
    names_file = find_names_file(folder)
    if names_file is None:
        raise UserError(f"{folder}: YOLO labels need class names: put classes.txt or data.yaml beside them")
    names = read_names(names_file)
    report.format = "YOLO"
    items = []
    for txt_path in txt_files:
        with skipping(report, txt_path, "malformed line", (ValueError, UnicodeDecodeError)):
            image_path = _find_image(txt_path, folder, images_dir)
            width, height = image_size(image_path)
            boxes, classes = [], []
            for line_no, line in enumerate(txt_path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                fields = line.split()
                if len(fields) < 5:
                    raise BadLabel("malformed line", f"line {line_no}: '{line.strip()}'")
                index = int(fields[0])
                if index not in names:
                    raise BadLabel("malformed line", f"line {line_no}: class {index} not in {names_file}")
                cx, cy, w, h = (float(v) for v in fields[1:5])
                if not (0 < w <= 1 + SLACK and 0 < h <= 1 + SLACK and -SLACK <= cx <= 1 + SLACK
                        and -SLACK <= cy <= 1 + SLACK):  # not a normalised box: no guessing what was meant
                    raise BadLabel("malformed box", f"line {line_no}: '{line.strip()}' (YOLO boxes are "
                                                    f"centre x, y and width, height in 0..1)")
                boxes.append(((cx - w / 2) * width, (cy - h / 2) * height,
                              (cx + w / 2) * width, (cy + h / 2) * height))
                classes.append(names[index])
            key = image_path.name
            items.append(make_item(image_path, width, height, boxes, classes, key, txt_path, table, report))
    return items


def _find_image(txt_path, folder, images_dir):
    relative = txt_path.relative_to(folder).with_suffix("")
    if images_dir is not None:
        roots = [Path(images_dir)]
    else:
        roots = [folder]
        if folder.name == "labels":
            roots.append(folder.parent / "images")
    for root in roots:
        for suffix in sorted(IMAGE_SUFFIXES):
            for candidate in (root / relative.with_suffix(suffix), root / relative.with_suffix(suffix.upper())):
                if candidate.is_file():
                    return candidate
    raise BadLabel("image missing", f"no image named {relative.name}.* in " + ", ".join(str(r) for r in roots))
