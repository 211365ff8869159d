"""`MTCNN`: facenet-pytorch's face detector API over our own cascade and its pretrained weights."""
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from .cascade import detect_batch, integral_image, standardise
from .crops import crop_faces
from .images import to_rgb_array
from .nets import in_chunks, load_nets


class MTCNN(torch.nn.Module):
    """Face detection with MTCNN, with facenet-pytorch's arguments and results.

    detect(img) -> boxes (N,4) float32 x1,y1,x2,y2, probs (N,) [, landmarks (N,5,2)]: arrays, empty when no
    face is found (never None). img: a PIL image, an HxWx3 uint8 RGB array (grayscale, RGBA and 16-bit are
    converted), a list of them, or a (B,H,W,3) array; the last two give lists with one result per frame.
    Boxes come largest first with select_largest, else most probable first.
    weights_path: a fine-tuned checkpoint with pnet.*/rnet.*/onet.* keys (stages it lacks stay pretrained).
    """

    def __init__(self, image_size=160, margin=0, min_face_size=20, thresholds=(0.6, 0.7, 0.7), factor=0.709,
                 post_process=True, select_largest=True, keep_all=False, device=None, weights_path=None):
        super().__init__()
        check_settings(image_size=image_size, margin=margin, min_face_size=min_face_size, thresholds=thresholds,
                       factor=factor)
        self.image_size, self.margin = image_size, margin
        self.min_face_size, self.thresholds, self.factor = min_face_size, list(thresholds), factor
        self.post_process, self.select_largest, self.keep_all = post_process, select_largest, keep_all
        self.device = torch.device(device or "cpu")
        self.weights_path = weights_path
        self.pnet, self.rnet, self.onet = load_nets(weights_path, self.device)
        if self.device.type == "cpu":
            # oneDNN runs these thin layers 2-3x faster channels-last (max-pooling most of all).
            for net in (self.pnet, self.rnet, self.onet):
                net.to(memory_format=torch.channels_last)

    @property
    def settings(self):
        """The detection settings, as keyword arguments for MTCNN(...)."""
        return dict(image_size=self.image_size, margin=self.margin, min_face_size=self.min_face_size,
                    thresholds=list(self.thresholds), factor=self.factor)

    @torch.inference_mode()
    def detect(self, img, landmarks=False, regions=None):
        """regions (our addition): search only part of each frame: for one image a list of rectangles
        (x1, y1, x2, y2) in its pixels, for a batch one such list per frame; None (the default, or for a frame)
        is the whole frame, an empty list no search at all (no faces). Faces in a region come out as the whole
        frame's detection finds them (the frame's own pyramid, see cascade.level_windows)."""
        frames, batched = _as_frames(img)
        regions = ([regions] if not batched else list(regions)) if regions is not None else [None] * len(frames)
        if len(regions) != len(frames):
            raise ValueError(f"regions: {len(regions)} entries for {len(frames)} frames")
        if self.device.type == "cpu":  # batching buys nothing on a CPU and costs cache: one frame at a time
            results = [self._detect_same_size(frames[i:i + 1], regions[i:i + 1])[0] for i in range(len(frames))]
        else:
            results = [r for group, group_regions in _same_size_batches(frames, regions)
                       for r in self._detect_same_size(group, group_regions)]
        boxes, probs, points = (list(x) for x in zip(*results)) if results else ([], [], [])
        if not batched:
            boxes, probs, points = boxes[0], probs[0], points[0]
        return (boxes, probs, points) if landmarks else (boxes, probs)

    @torch.inference_mode()
    def detect_stages(self, img):
        """Candidates after each stage for one image, as (N,5) arrays x1,y1,x2,y2,score: "pnet" (fed to RNet),
        "rnet" (fed to ONet), "onet" (final). For fine-tuning's hard-example mining."""
        frames, _ = _as_frames(img)
        with full_fp32():
            after = {}
            detect_batch(self._nets, self._integral(frames[:1]), self.min_face_size, self.thresholds, self.factor,
                         on_stage=after.__setitem__)
        return {k: torch.cat([c.boxes, c.scores[:, None]], 1).float().cpu().numpy() for k, c in after.items()}

    def extract(self, img, boxes, save_path=None):
        """Face crops of the boxes as a float tensor (N,3,S,S), standardised (x-127.5)/128 when post_process."""
        frames, batched = _as_frames(img)
        if not batched:
            boxes = [boxes]
        faces = []
        for frame, frame_boxes in zip(frames, boxes):
            crops = crop_faces(frame, np.asarray(frame_boxes).reshape(-1, 4), self.image_size, self.margin)
            t = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
            faces.append(standardise(t) if self.post_process else t)
        return faces if batched else faces[0]

    def forward(self, img):
        """Detect, then crop: (N,3,S,S) per image (at most one face unless keep_all)."""
        boxes, _ = self.detect(img)
        if isinstance(boxes, list):
            return [f if self.keep_all else f[:1] for f in self.extract(img, boxes)]
        faces = self.extract(img, boxes)
        return faces if self.keep_all else faces[:1]

    @property
    def _nets(self):
        """What the cascade calls: PNet on 0..255 input, RNet, ONet, fed in the nets' memory format."""
        fmt = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        return (lambda x, *odd_sides: self.pnet.forward_raw(x.contiguous(memory_format=fmt), *odd_sides),
                lambda x: in_chunks(self.rnet, x.contiguous(memory_format=fmt)),
                lambda x: in_chunks(self.onet, x.contiguous(memory_format=fmt)))

    def _integral(self, frames):
        """The cascade's input: the integral image of (B,H,W,3) uint8 frames, on the device (uint8 crosses
        to the GPU: 4x fewer bytes than floats)."""
        if not isinstance(frames, np.ndarray):
            batch = frames[0][None] if len(frames) == 1 else np.stack(frames)  # one frame: a view, no copy
        else:
            batch = frames
        if self.device.type == "cpu":
            return integral_image(batch)
        batch = torch.from_numpy(batch).pin_memory().to(self.device, non_blocking=True)
        return integral_image(batch.permute(0, 3, 1, 2))

    def _detect_same_size(self, frames, regions=None):
        """Detections in same-size frames. regions: None (whole frames) or one entry per frame (see detect);
        frames with an empty list are left out, the others all search every frame's rectangles (one batch),
        or whole frames if one of them asks for that."""
        h, w = frames[0].shape[:2]
        per_frame = regions if regions is not None else [None] * len(frames)
        searched = [i for i, r in enumerate(per_frame) if r is None or len(r)]
        out = [_no_faces() for _ in frames]
        if min(h, w) < 12 or not searched:
            return out
        wanted = [per_frame[i] for i in searched]
        union = None if any(r is None for r in wanted) else [tuple(box) for r in wanted for box in r]
        batch = frames if len(searched) == len(frames) else [frames[i] for i in searched]
        with full_fp32():
            found = detect_batch(self._nets, self._integral(batch), self.min_face_size, self.thresholds,
                                 self.factor, regions=union)
        boxes = found.boxes.float().cpu().numpy()
        probs = found.scores.float().cpu().numpy()
        points = found.landmarks.float().cpu().numpy()
        image = found.image.cpu().numpy()
        for k, i in enumerate(searched):
            sel = np.flatnonzero(image == k)
            if self.select_largest:
                area = (boxes[sel, 2] - boxes[sel, 0]) * (boxes[sel, 3] - boxes[sel, 1])
                sel = sel[np.argsort(-area, kind="stable")]
            out[i] = (boxes[sel], probs[sel], points[sel])
        return out


def check_settings(image_size=160, margin=0, min_face_size=20, thresholds=(0.6, 0.7, 0.7), factor=0.709):
    """ValueError naming the first bad detection setting: each would otherwise fail far from its cause
    (min_face_size 0 divides by zero, factor >= 1 never ends the pyramid, two thresholds fail only when a
    face reaches ONet)."""
    def number(value):
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and np.isfinite(value)

    if not (number(image_size) and int(image_size) == image_size and image_size >= 1):
        raise ValueError(f"image_size must be a positive whole number of pixels, got {image_size!r}")
    if not (number(margin) and margin >= 0):
        raise ValueError(f"margin must be 0 or more pixels, got {margin!r}")
    if not (number(min_face_size) and min_face_size > 0):
        raise ValueError(f"min_face_size must be a positive number of pixels, got {min_face_size!r}")
    if not (number(factor) and 0 < factor < 1):
        raise ValueError(f"factor (the pyramid's scale step) must lie between 0 and 1, got {factor!r}")
    if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__len__") or len(thresholds) != 3 \
            or not all(number(t) and 0 <= t <= 1 for t in thresholds):
        raise ValueError(f"thresholds must be three numbers in [0, 1] (PNet, RNet, ONet), got {thresholds!r}")


@contextmanager
def full_fp32():
    """IEEE fp32 (no TF32) in convolutions and matrix products on a GPU, so that it gives the CPU's answers
    (cuDNN convolutions default to TF32). Through current torch's precision settings, else the legacy
    flags: not both, torch objects to a mix of the two."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        knobs = [(conv, "fp32_precision", "ieee"), (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        knobs = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in knobs]
    for owner, name, value in knobs:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _no_faces():
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)


def _as_frames(img):
    """(HxWx3 uint8 frames: a (B,H,W,3) array or a list, whether the input was a batch)."""
    if isinstance(img, torch.Tensor):
        img = img.cpu().numpy()
    if isinstance(img, np.ndarray) and img.ndim == 4:
        if img.dtype == np.uint8 and img.shape[3] == 3:
            return np.ascontiguousarray(img), True
        return [to_rgb_array(f) for f in img], True
    if isinstance(img, (list, tuple)):
        return [to_rgb_array(f) for f in img], True
    if not isinstance(img, (np.ndarray, Image.Image)):
        raise TypeError(f"MTCNN expects a PIL image or an HxWx3 array, got {type(img).__name__}")
    return [to_rgb_array(img)], False


def _same_size_batches(frames, regions):
    """Consecutive runs of same-size frames, in order, with their regions: each run is one batch through the
    cascade."""
    if isinstance(frames, np.ndarray):
        return [(frames, regions)]
    groups = []
    for f, r in zip(frames, regions):
        if groups and groups[-1][0][0].shape == f.shape:
            groups[-1][0].append(f)
            groups[-1][1].append(r)
        else:
            groups.append(([f], [r]))
    return groups
