"""Any image as the HxWx3 uint8 RGB array the detector takes, whatever its mode (grayscale, RGBA, 16-bit)."""
import numpy as np
from PIL import Image


def to_rgb_array(img) -> np.ndarray:
    """A PIL image or an array (HxW, HxWx1/3/4, uint8 or uint16) as a contiguous HxWx3 uint8 RGB array."""
    if isinstance(img, Image.Image):
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            img = np.asarray(img)
        else:
            return np.ascontiguousarray(np.asarray(img.convert("RGB")))
    arr = np.asarray(img)
    if arr.dtype == np.uint16 or arr.dtype == np.int32:
        arr = (arr.astype(np.float32) / (65535.0 if arr.max(initial=0) > 255 else 255.0) * 255.0).round()
        arr = arr.clip(0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)
