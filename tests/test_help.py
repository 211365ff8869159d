"""Every script's --help: each option says what it does, and shows its default once, never for an on/off flag."""
import re
import subprocess
import sys
from functools import lru_cache

import pytest

SCRIPTS = ["cctv_mask_detector.py", "prepare_mask_dataset.py", "train_mask_detector.py", "test_detector.py",
           "footages_to_frames.py", "finetune_mtcnn.py", "active_learning.py"]


def option_blocks(help_text):
    """{'--flag': its help text} from argparse's options sections."""
    blocks, current = {}, None
    for line in help_text.split("\n\n", 1)[1].splitlines():  # after the usage block
        m = re.match(r"^  (-{1,2}\w[\w-]*)", line)
        if m:
            current = m.group(1)
            blocks[current] = line
        elif current and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return {flag: re.sub(r"\s+", " ", text) for flag, text in blocks.items()}


@lru_cache
def help_of(repo_root, script):
    r = subprocess.run([sys.executable, script, "--help"], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return option_blocks(r.stdout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_has_help_and_a_default_at_most_once(repo_root, script):
    blocks = help_of(repo_root, script)
    assert len(blocks) > 3
    for flag, text in blocks.items():
        if flag in ("-h", "--help"):
            continue
        assert re.search(r"[a-z]{3}", text.split(flag, 1)[1]), f"{script} {flag}: no help text"
        assert not re.search(r"\(default: (True|False|None|\[\])\)", text), f"{script} {flag}: {text}"
        assert text.lower().count("default") <= 1, f"{script} {flag}: default shown twice: {text}"


def test_negative_flags_and_model_defaults(repo_root):
    assert help_of(repo_root, "train_mask_detector.py")["--no_augment"].endswith("train without augmentation")
    assert "(default: the current version in models/current.json, else models/detector.pt)" in help_of(
        repo_root, "cctv_mask_detector.py")["--detector_model_path"]
    loop = help_of(repo_root, "active_learning.py")
    assert "(default: 3)" in loop["--mtcnn_epochs"] and "(default: 0.0001)" in loop["--mtcnn_lr"]
