"""The mask classifier: face crop (uint8 RGB, SxS) -> P(protected), and its self-describing checkpoint.

A checkpoint is one `torch.save`d dict of tensors and plain types (so `torch.load(weights_only=True)` reads
it): the architecture name, the state dict, input size, normalisation, class names, the MTCNN settings that
made the training crops, and free-form metadata (training data summary, test metrics).
"""
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from .atomic import save_torch
from .errors import UserError

CHECKPOINT_FORMAT = "cctv-mask-classifier"
CHECKPOINT_VERSION = 1
CLASS_NAMES = ("unprotected", "protected")
NORM_MEAN, NORM_STD = 127.5, 128.0
DEFAULT_INPUT_SIZE = 160
DEFAULT_MTCNN_SETTINGS = {
    "image_size": DEFAULT_INPUT_SIZE,
    "margin": 0,
    "min_face_size": 20,
    "thresholds": [0.6, 0.7, 0.7],
    "factor": 0.709,
}


class WriteupNet(nn.Module):
    """The original write-up's network, exactly: two 5x5 convs, 4x4 max-pools, one linear unit, sigmoid."""

    input_size = 160

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 5, kernel_size=5)
        self.pool1 = nn.MaxPool2d(4)
        self.conv2 = nn.Conv2d(5, 10, kernel_size=5)
        self.pool2 = nn.MaxPool2d(4)
        self.fc = nn.Linear(640, 1)

    def forward(self, x):
        """x: (B,3,160,160) standardised -> logits (B,). The sigmoid is applied by the caller."""
        x = torch.relu(self.pool1(self.conv1(x)))
        x = torch.relu(self.pool2(self.conv2(x)))
        return self.fc(x.flatten(1)).squeeze(1)


def _conv_bn(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallNet(nn.Module):
    """A small, stronger net: 2x average-pool to 80x80, four stride-2 3x3 conv+BN+ReLU blocks, global pooling.
    About 5 M multiply-adds per face; batch norm and global pooling make it steadier across sources."""

    input_size = 160

    def __init__(self, width=16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.AvgPool2d(2),
            _conv_bn(3, w, 2),
            _conv_bn(w, 2 * w, 2),
            _conv_bn(2 * w, 4 * w, 2),
            _conv_bn(4 * w, 4 * w, 2),
        )
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(4 * w, 1)

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        return self.fc(self.dropout(x)).squeeze(1)


ARCHITECTURES = {"writeup": WriteupNet, "small": SmallNet}


def build_network(arch: str) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown classifier architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch]()


def standardise(crops: np.ndarray) -> torch.Tensor:
    """uint8 (N,S,S,3) RGB -> float (N,3,S,S), (x - 127.5) / 128 as in the write-up and MTCNN's post_process."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return (x - NORM_MEAN) / NORM_STD


class MaskClassifier:
    """A trained network plus what it needs to be used right: crop size, MTCNN crop settings, class names."""

    def __init__(self, network: nn.Module, arch: str, input_size=DEFAULT_INPUT_SIZE, mtcnn_settings=None,
                 metadata=None, device="cpu"):
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.arch = arch
        self.input_size = int(input_size)
        self.mtcnn_settings = dict(mtcnn_settings or DEFAULT_MTCNN_SETTINGS)
        self.class_names = CLASS_NAMES
        self.metadata = dict(metadata or {})

    @torch.inference_mode()
    def predict(self, crops, batch_size=256) -> np.ndarray:
        """crops: uint8 RGB (N,S,S,3) -> float32 (N,) P(protected). Crops of another size are resized."""
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        if len(crops) == 0:
            return np.empty(0, dtype=np.float32)
        if crops.ndim != 4 or crops.shape[3] != 3:
            raise ValueError(f"expected uint8 crops of shape (N,S,S,3), got {crops.shape}")
        crops = self._resize(crops)
        self.network.eval()
        out = [torch.sigmoid(self.network(standardise(crops[i:i + batch_size]).to(self.device))).cpu()
               for i in range(0, len(crops), batch_size)]
        return torch.cat(out).numpy().astype(np.float32)

    def _resize(self, crops):
        s = self.input_size
        if crops.shape[1:3] == (s, s):
            return crops
        return np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA) for c in crops])

    def checkpoint(self) -> dict:
        return make_checkpoint(self.network, self.arch, self.input_size, self.mtcnn_settings, self.metadata)

    def save(self, path):
        save_classifier(self, path)

    def __repr__(self):
        return f"MaskClassifier(arch={self.arch!r}, input_size={self.input_size})"


def make_checkpoint(network, arch, input_size, mtcnn_settings, metadata) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "state_dict": {k: v.detach().cpu().clone() for k, v in network.state_dict().items()},
        "input_size": int(input_size),
        "normalization": {"mean": NORM_MEAN, "std": NORM_STD, "channels": "RGB"},
        "class_names": list(CLASS_NAMES),
        "output": "sigmoid of one logit = P(class_names[1])",
        "mtcnn_settings": dict(mtcnn_settings),
        "metadata": dict(metadata),
    }


def save_classifier(clf: MaskClassifier, path):
    """Write the checkpoint atomically: an interrupted save leaves the previous file in place."""
    save_torch(clf.checkpoint(), path)


def load_classifier(path, device="cpu") -> MaskClassifier:
    """Load a checkpoint written by save_classifier. UserError naming the file if it is missing, corrupt,
    or some other kind of file (a foreign state dict, an MTCNN checkpoint, ...)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such classifier checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt/foreign file
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        reason = f"{e.__class__.__name__}: {detail}" if detail else e.__class__.__name__
        raise UserError(f"{path}: not a readable classifier checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a mask classifier checkpoint (no '{CHECKPOINT_FORMAT}' format marker; "
                        f"train one with train_mask_detector.py)")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise UserError(f"{path}: classifier checkpoint version {ckpt.get('version')!r} is not supported "
                        f"(expected {CHECKPOINT_VERSION})")
    arch = ckpt.get("arch")
    if arch not in ARCHITECTURES:
        raise UserError(f"{path}: unknown classifier architecture {arch!r}")
    network = ARCHITECTURES[arch]()
    try:
        network.load_state_dict(ckpt["state_dict"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise UserError(f"{path}: classifier weights do not fit architecture {arch!r} "
                        f"({str(e).splitlines()[0][:200]})") from None
    input_size = _checked_input_size(path, network, ckpt.get("input_size", DEFAULT_INPUT_SIZE))
    mtcnn_settings = _checked_mtcnn_settings(path, ckpt.get("mtcnn_settings"))
    return MaskClassifier(network, arch, input_size, mtcnn_settings, ckpt.get("metadata"), device=device)


MAX_INPUT_SIZE = 1024  # a face crop; more is a corrupt setting, not a bigger model


def _checked_input_size(path, network, size) -> int:
    """The recorded crop size, if the network takes it (the write-up's net only takes 160)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_INPUT_SIZE:
        raise UserError(f"{path}: recorded input size {size!r} is not a whole number of pixels in "
                        f"1..{MAX_INPUT_SIZE}")
    try:
        with torch.inference_mode():
            network.eval()(torch.zeros(1, 3, size, size))
    except RuntimeError as e:
        raise UserError(f"{path}: recorded input size {size} does not fit its {type(network).__name__} "
                        f"({str(e).splitlines()[0][:120]})") from None
    return size


def _checked_mtcnn_settings(path, settings) -> dict:
    """The recorded MTCNN crop settings (a missing one means the default), checked as MTCNN checks them, so that
    a bad one is named here rather than failing (or never ending) once frames flow."""
    from mtcnn import check_settings

    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise UserError(f"{path}: recorded MTCNN settings are not a mapping ({type(settings).__name__})")
    merged = {**DEFAULT_MTCNN_SETTINGS, **settings}
    try:
        check_settings(**{k: merged[k] for k in DEFAULT_MTCNN_SETTINGS})
    except ValueError as e:
        raise UserError(f"{path}: recorded MTCNN setting {e}") from None
    return settings
