"""The three MTCNN networks, with facenet-pytorch's state-dict layout so its pretrained weights load as is."""
from pathlib import Path

import torch
from torch import nn


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

    def forward(self, x):
        """x: (B,3,H,W) standardised. Returns box regression (B,4,h,w) and face/non-face logits (B,2,h,w)."""
        return self._trunk(self.conv1(x))

    def forward_raw(self, x):
        """The same on x in 0..255: the standardisation (x-127.5)/128 folded into conv1's weights,
        which saves a pass over every pyramid level."""
        w = self.conv1.weight * 0.0078125
        b = self.conv1.bias - 127.5 * w.sum(dim=(1, 2, 3))
        return self._trunk(nn.functional.conv2d(x, w, b))

    def _trunk(self, x):
        x = self.pool1(self.prelu1(x))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        # Both 1x1 heads as one convolution: one pass over the largest feature map instead of two.
        heads = nn.functional.conv2d(x, torch.cat([self.conv4_2.weight, self.conv4_1.weight]),
                                     torch.cat([self.conv4_2.bias, self.conv4_1.bias]))
        return heads[:, :4], heads[:, 4:]


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


def pretrained_weights_dir() -> Path:
    """Folder of facenet-pytorch's pretrained pnet.pt/rnet.pt/onet.pt (the package is installed for them only)."""
    import importlib.util

    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "facenet-pytorch is not installed: its pretrained MTCNN weights are needed "
            "(pip install --no-deps facenet-pytorch==2.6.0, or run `make setup`)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_nets(weights_path=None, device="cpu"):
    """PNet, RNet, ONet in eval mode. `weights_path`: a fine-tuned checkpoint holding `pnet.*`, `rnet.*`,
    `onet.*` keys (a stage missing from it keeps its pretrained weights); None: the pretrained weights."""
    from cctv.errors import UserError

    nets = {}
    for name, cls in STAGES.items():
        net = cls()
        net.load_state_dict(torch.load(pretrained_weights_dir() / f"{name}.pt", map_location="cpu",
                                       weights_only=True))
        nets[name] = net
    if weights_path is not None:
        state = read_checkpoint(weights_path)
        for name, net in nets.items():
            own = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            if own:
                try:
                    net.load_state_dict(own)
                except RuntimeError as e:
                    raise UserError(f"{weights_path}: {name} weights do not fit MTCNN's {name} ({e})") from None
        if not any(k.split(".")[0] in STAGES for k in state):
            raise UserError(f"{weights_path}: not an MTCNN checkpoint (no pnet.*, rnet.* or onet.* weights)")
    return tuple(nets[n].to(device).eval() for n in STAGES)


def read_checkpoint(path) -> dict:
    """A fine-tuned MTCNN checkpoint as a flat dict; `state_dict` may also be nested under "state_dict"."""
    from cctv.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such MTCNN checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: pickle, zip and torch errors all land here
        raise UserError(f"{path}: not a readable MTCNN checkpoint ({e.__class__.__name__})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = {**obj, **obj["state_dict"]}
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not an MTCNN checkpoint (expected a dict of weights)")
    return obj
