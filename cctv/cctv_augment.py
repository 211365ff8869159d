"""Make a labeled photo look like a frame of a ceiling CCTV camera, boxes kept in step.

What the write-up's entrance camera shows, and the step that imitates it:
- faces of 10-30 px in a wide frame             -> `downscale_faces` (the whole photo, area-averaged)
- a camera above the door: faces foreshortened  -> `top_down` (the frame squashed vertically, 0.75-0.95)
- caps and hair over the forehead, seen from above -> `cap_over_forehead` (a dark brim over the top of a face)
- walking people, cheap optics                  -> `blur` (Gaussian or linear motion blur)
- dim corridors, auto exposure                  -> `light` (gain and gamma)
- night mode                                    -> `grayscale` (IR cameras give grey frames)
- sensor noise                                  -> `noise`
- GIF exports (256-colour palette) and streams  -> `gif_palette`, `jpeg`

Every step draws from the numpy Generator it is given, so a seed fixes the result. Images are HxWx3 uint8
RGB; boxes (F,4) float x1,y1,x2,y2 in pixels.
"""
import cv2
import numpy as np
from PIL import Image


def downscale_faces(image, boxes, rng, face_range=(10.0, 30.0)):
    """Shrink the frame so that its median face is 10-30 px wide (never enlarges)."""
    if len(boxes) == 0:
        return image, boxes
    median = float(np.median(boxes[:, 2] - boxes[:, 0]))
    scale = min(1.0, rng.uniform(*face_range) / max(median, 1.0))
    h, w = image.shape[:2]
    nw, nh = max(12, int(round(w * scale))), max(12, int(round(h * scale)))
    if (nw, nh) == (w, h):
        return image, boxes
    out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)


def top_down(image, boxes, rng, squash=(0.75, 0.95)):
    """Faces seen from above look shorter: squash the frame vertically."""
    h, w = image.shape[:2]
    nh = max(12, int(round(h * rng.uniform(*squash))))
    out = cv2.resize(image, (w, nh), interpolation=cv2.INTER_AREA)
    return out, boxes * np.array([1, nh / h, 1, nh / h], np.float32)


def cap_over_forehead(image, boxes, rng, share=0.5):
    """A dark cap brim (or hair) over the top 20-40% of a share of the faces, a little wider than the face."""
    out = image.copy()
    for x1, y1, x2, y2 in boxes:
        if rng.random() >= share:
            continue
        w, h = x2 - x1, y2 - y1
        depth = rng.uniform(0.2, 0.4) * h
        colour = tuple(int(c) for c in rng.integers(10, 70, 3))
        centre = (int(round((x1 + x2) / 2 + rng.uniform(-0.1, 0.1) * w)), int(round(y1 + depth / 2)))
        axes = (max(1, int(round(w * rng.uniform(0.55, 0.7)))), max(1, int(round(depth / 2))))
        cv2.ellipse(out, centre, axes, float(rng.uniform(-15, 15)), 0, 360, colour, -1, lineType=cv2.LINE_AA)
    return out


def blur(image, rng):
    """Gaussian blur (sigma 0.5-1.2) or linear motion blur (3-7 px, any direction)."""
    if rng.random() < 0.5:
        return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    length = int(rng.integers(3, 8))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2] = 1.0 / length
    turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def light(image, rng):
    """Low light and exposure: gain 0.5-1.1, gamma 0.7-1.4."""
    x = image.astype(np.float32) / 255.0
    x = np.power(x * rng.uniform(0.5, 1.1), rng.uniform(0.7, 1.4))
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def grayscale(image, rng=None):
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[:, :, None], 3, axis=2)


def noise(image, rng):
    """Sensor noise, sigma 2-8 levels."""
    x = image.astype(np.float32) + rng.normal(0, rng.uniform(2, 8), image.shape).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def gif_palette(image, rng=None):
    """A 256-colour adaptive palette with dithering, as a GIF export stores frames."""
    pil = Image.fromarray(image).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(pil.convert("RGB"))


def jpeg(image, rng):
    """Stream compression: JPEG at quality 20-60."""
    ok, data = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 61))])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()


# step -> probability in one cctvify() call
DEFAULT_PROBABILITIES = {"downscale": 0.7, "top_down": 0.5, "cap": 0.5, "blur": 0.6, "light": 0.5,
                         "grayscale": 0.15, "noise": 0.4, "compression": 0.7}


def cctvify(image, boxes, rng, p=None, face_range=(10.0, 30.0)):
    """A CCTV-looking version of a labeled frame: (image, boxes). Steps in the order a camera applies them
    (geometry and scene, then optics, light, sensor, encoder), each with its probability in `p`."""
    p = {**DEFAULT_PROBABILITIES, **(p or {})}
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if rng.random() < p["cap"]:
        image = cap_over_forehead(image, boxes, rng)
    if rng.random() < p["top_down"]:
        image, boxes = top_down(image, boxes, rng)
    if rng.random() < p["downscale"]:
        image, boxes = downscale_faces(image, boxes, rng, face_range)
    if rng.random() < p["blur"]:
        image = blur(image, rng)
    if rng.random() < p["light"]:
        image = light(image, rng)
    if rng.random() < p["grayscale"]:
        image = grayscale(image)
    if rng.random() < p["noise"]:
        image = noise(image, rng)
    if rng.random() < p["compression"]:
        image = gif_palette(image) if rng.random() < 0.5 else jpeg(image, rng)
    return np.ascontiguousarray(image), boxes
