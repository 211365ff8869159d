"""What the scripts share in their command lines: a --help that shows each default once, and only where it
says something."""
import argparse

from .errors import UserError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults formatter, except: no default for on/off flags (`--no_augment` would print
    'default: True', the value of what it turns off), none when it is None or empty (nothing to show), and
    none when the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.nargs == 0 or action.default in (None, [], (), "") or action.default is argparse.SUPPRESS
                or "default" in text.lower()):
            return text
        return super()._get_help_string(action)


def make_parser(doc) -> argparse.ArgumentParser:
    """The scripts' parser: the first paragraph of the module docstring as its description."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=HelpFormatter)


def settings_defaults(cls):
    """A settings dataclass's defaults by field name, for argparse's `default=`: each default is written once,
    in the dataclass next to its run function (fields without a default are the required flags)."""
    from dataclasses import MISSING, fields
    from types import SimpleNamespace

    return SimpleNamespace(**{f.name: f.default if f.default is not MISSING else f.default_factory()
                              for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING})


def parse_thresholds(value, flag="--thresholds"):
    """MTCNN's PNet, RNet, ONet thresholds in either form the scripts document: three numbers
    (`--thresholds 0.6 0.7 0.7`, a list) or one comma-separated (`--thresholds 0.6,0.7,0.7`). None stays None."""
    if value is None:
        return None
    parts = value if isinstance(value, (list, tuple)) else [value]
    try:
        values = [float(v) for part in parts for v in str(part).split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        shown = " ".join(map(str, parts)) if isinstance(value, (list, tuple)) else value
        raise UserError(f"{flag}: expected three numbers in [0, 1] (PNet RNet ONet) like 0.6 0.7 0.7 or "
                        f"0.6,0.7,0.7, got '{shown}'")
    return values


def add_thresholds(parser, default, help="MTCNN's PNet, RNet and ONet thresholds"):
    """--thresholds P R O, or --thresholds P,R,O (parse_thresholds reads both)."""
    parser.add_argument("--thresholds", nargs="+", default=default, metavar="P[,R,O]",
                        help=f"{help}: three numbers, space- or comma-separated")


def check_device(device, flag="--device") -> str:
    """The torch device a --device names ('cpu', 'cuda', 'cuda:1', ...; None: cpu), as a string; UserError when
    it is not a device or this machine has no such CUDA device."""
    import torch

    device = device or "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"{flag} {device}: not a device (use cpu, cuda, cuda:0, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{flag} {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise UserError(f"{flag} {device}: no such CUDA device on this machine "
                        f"({torch.cuda.device_count()} found)")
    return str(dev)


def add_device(parser, default, help="cpu, cuda, cuda:0, ..."):
    parser.add_argument("--device", default=default, help=help)


def add_threads(parser, default, help="torch CPU threads (0: the cores this process may use)"):
    parser.add_argument("--threads", type=int, default=default, help=help)


CLASS_THRESHOLD_FLAG = "--class_threshold/--threshold"  # how errors name it: either spelling works


def add_class_threshold(parser, default):
    """--class_threshold, also spelled --threshold (footages_to_frames.py's first name for it)."""
    parser.add_argument("--class_threshold", "--threshold", dest="class_threshold", type=float, default=default,
                        help="P(protected) at or above this is protected")
