"""The three MTCNN networks, with facenet-pytorch's state-dict layout so its pretrained weights load as is."""
from pathlib import Path

import torch
from torch import nn

from .cascade import MEAN, SCALE


PNET_BAND_ROWS = 64  # output rows per band of PNet's layers on the CPU (see _in_row_bands)
CROP_PIXELS_PER_CHUNK = 64 * 24 * 24  # RNet/ONet on the CPU: 64 RNet or 16 ONet crops a call (see in_chunks)
PNET_WIDE_CHANNELS = 16  # conv1's 10 channels, zero-padded to a vector width for detection (see forward_raw)


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)
        self._detection_cache = (None, None)
        self._parameters_list = None

    def forward(self, x):
        """x: (B,3,H,W) standardised. Returns box regression (B,4,h,w) and face/non-face logits (B,2,h,w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x)

    def forward_raw(self, x, odd_columns=(), odd_rows=()):
        """forward(standardise(x)) for detection, on x in 0..255, with the same numbers to float rounding,
        2x faster on the CPU: the standardisation is folded into conv1; conv1's 10 channels are padded with
        zeros to 16, on which oneDNN's channels-last PReLU runs 4x faster; max-pooling is a maximum of strided
        views (7x faster than max_pool2d channels-last); the two heads are one matrix product (_heads); and on
        the CPU the layers run in bands of rows (_in_row_bands).

        x may be a canvas of windows side by side (cascade._pnet_on_canvas): before pooling, conv1's output
        column c over rows [r0, r1) takes a copy of column c-1 for each (r0, r1, c) in odd_columns, and row r
        over columns [c0, c1) a copy of row r-1 for each (c0, c1, r) in odd_rows, so that a window with an odd
        side keeps its last half pooling cell as ceil-mode pooling on it alone would."""
        w = self._detection_weights()

        def first_block(top, bottom):  # conv1's output rows [top, bottom): top even, so a pair never splits
            rows = nn.functional.prelu(nn.functional.conv2d(x[:, :, top:bottom + 2], w["conv1"], w["bias1"]),
                                       w["prelu1"])
            for r0, r1, c in odd_columns:
                r0, r1 = max(r0, top), min(r1, bottom)
                if r0 < r1:
                    rows[:, :, r0 - top:r1 - top, c] = rows[:, :, r0 - top:r1 - top, c - 1]
            for c0, c1, r in odd_rows:
                if top <= r < bottom:  # r is odd, so r - 1 is in the band too
                    rows[:, :, r - top, c0:c1] = rows[:, :, r - top - 1, c0:c1]
            return max_pool_2x2(rows)

        def rest(rows):
            rows = self.prelu2(nn.functional.conv2d(rows, w["conv2"], self.conv2.bias))
            return _heads(self.prelu3(self.conv3(rows)), w["heads"], w["bias_heads"])

        height = x.shape[2] - 2  # conv1's output rows
        band = 2 * PNET_BAND_ROWS if x.device.type == "cpu" else height  # as _in_row_bands
        blocks = [first_block(top, min(top + band, height)) for top in range(0, height, band)]
        pooled = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=2)
        heads = _in_row_bands(rest, pooled, pooled.shape[2] - 4, stride=1, halo=4)
        return heads[:, :4], heads[:, 4:]

    def _detection_weights(self):
        """forward_raw's weights, made again only when the parameters change (fine-tuning trains in place)."""
        if self._parameters_list is None:  # the same Parameter objects for the net's life; their data may change
            self._parameters_list = list(self.parameters())
        key = tuple((p.data_ptr(), p._version) for p in self._parameters_list)
        if self._detection_cache[0] != key:
            with torch.no_grad():
                self._detection_cache = (key, self._make_detection_weights())
        return self._detection_cache[1]

    def _make_detection_weights(self):
        pad = PNET_WIDE_CHANNELS - self.conv1.out_channels
        folded = self.conv1.weight * SCALE  # standardise() folded into conv1
        bias1 = self.conv1.bias - MEAN * folded.sum(dim=(1, 2, 3))
        fmt = _memory_format(self.conv2.weight)
        return {"conv1": nn.functional.pad(folded, (0, 0, 0, 0, 0, 0, 0, pad)).contiguous(memory_format=fmt),
                "bias1": nn.functional.pad(bias1, (0, pad)),
                "prelu1": nn.functional.pad(self.prelu1.weight, (0, pad)),
                "conv2": nn.functional.pad(self.conv2.weight, (0, 0, 0, 0, 0, pad)).contiguous(memory_format=fmt),
                "heads": torch.cat([self.conv4_2.weight, self.conv4_1.weight]).contiguous(memory_format=fmt),
                "bias_heads": torch.cat([self.conv4_2.bias, self.conv4_1.bias])}


def _heads(x, weight, bias):
    """The 1x1 convolution of PNet's two heads, (B,32,h,w) -> (B,6,h,w). On channels-last input, one matrix
    product (6,32) x (32,B*h*w) over the channels as they lie: 4x faster than conv2d, which takes a slow
    path for so few output channels."""
    if not x.is_contiguous(memory_format=torch.channels_last):
        return nn.functional.conv2d(x, weight, bias)
    b, c, h, w = x.shape
    out = torch.addmm(bias[:, None], weight.view(len(bias), c), x.permute(0, 2, 3, 1).reshape(-1, c).t())
    return out.view(len(bias), b, h, w).transpose(0, 1)


def max_pool_2x2(x):
    """F.max_pool2d(x, 2, 2, ceil_mode=True) as maxima of strided views (a window cut by an odd edge keeps
    what it holds): the same numbers, 7x faster than max_pool2d on channels-last tensors."""
    height, width = x.shape[2], x.shape[3]
    even_h, even_w = height - height % 2, width - width % 2
    out = torch.empty((x.shape[0], x.shape[1], (height + 1) // 2, (width + 1) // 2), dtype=x.dtype,
                      device=x.device, memory_format=_memory_format(x))
    rows = torch.maximum(x[:, :, 0:even_h:2], x[:, :, 1:even_h:2])
    if height % 2:
        rows = torch.cat([rows, x[:, :, even_h:]], dim=2)
    torch.maximum(rows[:, :, :, 0:even_w:2], rows[:, :, :, 1:even_w:2], out=out[:, :, :, :even_w // 2])
    if width % 2:
        out[:, :, :, -1] = rows[:, :, :, -1]
    return out


def in_chunks(net, crops):
    """net(crops) for RNet/ONet, on the CPU in chunks of CROP_PIXELS_PER_CHUNK: the same numbers, but the
    feature maps stay in cache (RNet on 800 crops 3x faster, ONet on 256 crops 3x faster)."""
    per_chunk = max(1, CROP_PIXELS_PER_CHUNK // (crops.shape[2] * crops.shape[3]))
    if crops.device.type != "cpu" or len(crops) <= per_chunk:
        return net(crops)
    outputs = [net(chunk) for chunk in crops.split(per_chunk)]
    return tuple(torch.cat(parts) for parts in zip(*outputs))


def _memory_format(t):
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _in_row_bands(layers, x, out_rows, stride, halo):
    """layers(x) computed in bands of PNET_BAND_ROWS output rows on the CPU, output rows [a, a+n) from input
    rows [stride*a, stride*(a+n)+halo): the same numbers, but the large full-size feature maps never exist
    whole; writing them out cost more than computing them (PNet 1.5x faster at 1080p)."""
    if x.device.type != "cpu" or out_rows <= PNET_BAND_ROWS:
        return layers(x)
    return torch.cat([layers(x[:, :, stride * a:stride * (a + PNET_BAND_ROWS) + halo])
                      for a in range(0, out_rows, PNET_BAND_ROWS)], dim=2)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        """x: (N,3,24,24). Returns box regression (N,4) and logits (N,2)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were converted from Caffe/TF: dense layers expect (N, W, H, C) flattening.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.dense5_1(x)


class ONet(nn.Module):
    """Output net on 48x48 crops: box regression, 5 landmarks, face logits."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        """x: (N,3,48,48). Returns box regression (N,4), landmarks (N,10: 5 x then 5 y) and logits (N,2)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x)


STAGES = {"pnet": PNet, "rnet": RNet, "onet": ONet}


class MTCNNWeightsError(ValueError):
    """Weights that can't be loaded: a missing, unreadable or foreign checkpoint, or facenet-pytorch's pretrained
    weight files missing. The message names the file."""


def pretrained_weights_dir() -> Path:
    """Folder of facenet-pytorch's pretrained pnet.pt/rnet.pt/onet.pt (the package is installed for them only)."""
    import importlib.util

    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise MTCNNWeightsError(
            "facenet-pytorch is not installed: its pretrained MTCNN weights are needed "
            "(pip install --no-deps facenet-pytorch==2.6.0, or run `make setup`)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_nets(weights_path=None, device="cpu"):
    """PNet, RNet, ONet in eval mode. `weights_path`: a fine-tuned checkpoint holding `pnet.*`, `rnet.*`,
    `onet.*` keys (a stage missing from it keeps its pretrained weights); None: the pretrained weights."""
    nets = {}
    for name, cls in STAGES.items():
        net = cls()
        net.load_state_dict(_read_pretrained(pretrained_weights_dir() / f"{name}.pt"))
        nets[name] = net
    if weights_path is not None:
        state = read_checkpoint(weights_path)
        for name, net in nets.items():
            own = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            if own:
                try:
                    net.load_state_dict(own)
                except (RuntimeError, TypeError, AttributeError) as e:  # wrong shapes, or not tensors
                    raise MTCNNWeightsError(f"{weights_path}: {name} weights do not fit MTCNN's {name} ({e})") from None
        if not any(k.split(".")[0] in STAGES for k in state):
            raise MTCNNWeightsError(f"{weights_path}: not an MTCNN checkpoint (no pnet.*, rnet.* or onet.* weights)")
    return tuple(nets[n].to(device).eval() for n in STAGES)


def _read_pretrained(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise MTCNNWeightsError(f"{path}: facenet-pytorch's pretrained weights are missing (reinstall it: "
                                "pip install --no-deps facenet-pytorch==2.6.0, or `make setup`)") from None
    except Exception as e:  # a truncated or corrupt file: pickle, zip and torch errors all land here
        raise MTCNNWeightsError(f"{path}: facenet-pytorch's pretrained weights are unreadable "
                                f"({e.__class__.__name__})") from None


def read_checkpoint(path) -> dict:
    """A fine-tuned MTCNN checkpoint as a flat dict; `state_dict` may also be nested under "state_dict"."""
    path = Path(path)
    if not path.is_file():
        raise MTCNNWeightsError(f"{path}: no such MTCNN checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: pickle, zip and torch errors all land here
        raise MTCNNWeightsError(f"{path}: not a readable MTCNN checkpoint ({e.__class__.__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = {**obj, **obj["state_dict"]}
    if not isinstance(obj, dict):
        raise MTCNNWeightsError(f"{path}: not an MTCNN checkpoint (expected a dict of weights)")
    return obj
