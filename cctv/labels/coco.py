"""COCO detection JSON: images[{id, file_name, width, height}], annotations[{image_id, category_id,
bbox: [x, y, width, height]}], categories[{id, name}]. Images without annotations are read with no boxes."""
from collections import defaultdict
from pathlib import Path

from ..errors import UserError
from .common import image_size, positive_size, read_json
from .model import BadLabel, make_item, skipping
from .safepath import safe_join


def is_coco(doc) -> bool:
    return isinstance(doc, dict) and {"images", "annotations", "categories"} <= doc.keys()


def find_coco_file(folder):
    """The COCO JSON in `folder` or `folder/annotations`, or None."""
    for candidate in sorted(Path(folder).glob("*.json")) + sorted(Path(folder).glob("annotations/*.json")):
        try:
            if is_coco(read_json(candidate)):
                return candidate
        except BadLabel:
            continue
    return None


def read_coco(json_path, images_dir, table, report):
    json_path = Path(json_path)
    try:
        doc = read_json(json_path)
    except BadLabel as e:
        raise UserError(f"{json_path}: {e}") from None
    if not is_coco(doc):
        raise UserError(f"{json_path}: not a COCO file (needs images, annotations and categories)")
    if not doc["images"]:
        raise UserError(f"{json_path}: no images: the export is empty")
    report.format = "COCO"
    try:
        categories = {c["id"]: c["name"] for c in doc["categories"]}
    except (KeyError, TypeError) as e:
        raise UserError(f"{json_path}: malformed categories ({e})") from None
    per_image = defaultdict(list)
    for ann in doc["annotations"]:
        if isinstance(ann, dict):
            per_image[ann.get("image_id")].append(ann)
    images_dir = Path(images_dir) if images_dir else _default_images_dir(json_path)
    items = []
    for image in doc["images"]:
        where = f"{json_path} image {image.get('id') if isinstance(image, dict) else image!r}"
        with skipping(report, where, "malformed entry"):
            file_name = str(image["file_name"])
            image_path = safe_join(images_dir, file_name)
            if not image_path.is_file():
                raise BadLabel("image missing", str(image_path))
            boxes, names = [], []
            for ann in per_image[image["id"]]:
                if ann.get("category_id") not in categories:
                    raise BadLabel("malformed annotation", f"unknown category_id {ann.get('category_id')}")
                x, y, w, h = (float(v) for v in ann["bbox"])
                boxes.append((x, y, x + w, y + h))
                names.append(categories[ann["category_id"]])
            width, height = positive_size(image) or image_size(image_path)
            items.append(make_item(image_path, width, height, boxes, names, file_name, json_path, table, report))
    return items


def _default_images_dir(json_path):
    folder = json_path.parent
    for candidate in (folder / "images", folder.parent / "images"):
        if candidate.is_dir():
            return candidate
    return folder
