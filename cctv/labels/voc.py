"""Pascal VOC XML (one file per image; LabelImg, CVAT): filename, size, object[name, bndbox]. The
<path> element is ignored: images are looked up by <filename> in the images folder only."""
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import UserError
from .common import image_size
from .model import BadLabel, make_item, skipping
from .safepath import safe_join


def is_voc(path) -> bool:
    try:
        return ET.parse(path).getroot().tag == "annotation"
    except (ET.ParseError, OSError):
        return False


def read_voc(folder_or_file, images_dir, table, report):
    source = Path(folder_or_file)
    xml_files = [source] if source.is_file() else sorted(source.rglob("*.xml"))
    if not xml_files:
        raise UserError(f"{source}: no .xml annotation files: the export is empty")
    report.format = "Pascal VOC"
    images_dir = Path(images_dir) if images_dir else None
    items = []
    for xml_path in xml_files:
        with skipping(report, xml_path, "malformed annotation"):
            root = _parse(xml_path)
            file_name = (root.findtext("filename") or "").strip()
            if not file_name:
                raise BadLabel("malformed annotation", "no <filename>")
            image_path = _find_image(xml_path, images_dir, file_name)
            width, height = _size(root) or image_size(image_path)
            boxes, names = [], []
            for obj in root.iter("object"):
                box = obj.find("bndbox")
                if box is None:
                    raise BadLabel("malformed annotation", "an <object> without <bndbox>")
                boxes.append([float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax")])
                names.append((obj.findtext("name") or "").strip())
            items.append(make_item(image_path, width, height, boxes, names,
                                   image_path.name, xml_path, table, report))
    return items


def _parse(xml_path):
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise BadLabel("malformed XML", f"{e}") from None
    if root.tag != "annotation":
        raise BadLabel("not a VOC annotation", f"root element <{root.tag}>")
    return root


def _size(root):
    try:
        width, height = int(float(root.findtext("size/width"))), int(float(root.findtext("size/height")))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _find_image(xml_path, images_dir, file_name):
    """<images_dir>/<filename>; without images_dir: beside the xml, then ../images and ../JPEGImages."""
    if images_dir is not None:
        candidates = [safe_join(images_dir, file_name)]
    else:
        folder = xml_path.parent
        candidates = [safe_join(d, file_name) for d in (folder, folder.parent / "images",
                                                        folder.parent / "JPEGImages") if d.is_dir()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BadLabel("image missing", "looked for " + ", ".join(str(c) for c in candidates))
