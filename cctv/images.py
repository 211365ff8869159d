"""Reading images as HxWx3 uint8 RGB arrays, whatever their mode (grayscale, RGBA, 16-bit)."""
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mtcnn.images import to_rgb_array  # noqa: F401 - cctv's image reading returns what MTCNN takes

from .errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def load_image(path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB. Raises UserError naming the file when it can't."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such image file")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb_array(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: not a readable image ({e.__class__.__name__}: {e})") from None


def list_images(folder):
    """Image files directly in `folder`, sorted by name (other files are ignored)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
