"""Small helpers shared by the format readers."""
import json
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..images import IMAGE_SUFFIXES
from .model import BadLabel


def read_json(path):
    """A JSON file's content; BadLabel('malformed JSON') when it can't be parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadLabel("malformed JSON", f"{path}: {e}") from None
    except OSError as e:
        raise BadLabel("unreadable file", f"{path}: {e}") from None


def image_size(path):
    """(width, height) from the image header; BadLabel when the file is not a readable image."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise BadLabel("unreadable image", f"{path}: {e}") from None


def first_existing(paths):
    for path in paths:
        if Path(path).is_file():
            return Path(path)
    return None


def is_image(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def positive_size(info):
    """(width, height) from a {'width', 'height'} dict when both are positive numbers, else None."""
    try:
        width, height = int(info["width"]), int(info["height"])
    except (TypeError, KeyError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None
