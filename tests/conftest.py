"""Shared fixtures. Real data lives in ../shared (beside the repo); tests that need it skip without it."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

# Before anything imports torch: OpenMP threads that sleep while they wait, not spin, so that the suite
# (and the scripts it starts, which inherit this) keeps its speed on a machine shared with other work.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Tests run the active-learning loop in this process too: `active_learning.py run` must not nice it.
os.environ["CCTV_AL_NICE"] = "0"

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED} not found: the real data and references live in ../shared beside the repo")
    return SHARED


@pytest.fixture(scope="module")
def detector_model():
    path = Path(os.environ.get("CCTV_DETECTOR_MODEL", ROOT / "models" / "detector.pt"))
    if not path.is_file():
        pytest.skip(f"{path} not found: train it with train_mask_detector.py (the repo ships models/detector.pt)")
    return str(path)


@pytest.fixture(scope="module")
def four_people(shared_dir):
    return shared_dir / "data" / "footage" / "four_people_masking.mp4"


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture()
def tiny_disk(tmp_path):
    """A mounted tmpfs: tiny_disk("64k") -> its folder, tiny_disk("1m", "ro") a read-only one; unmounted after
    the test. Needs root (mount): skipped with a message where it is not permitted."""
    mounted = []

    def mount(size, options=""):
        folder = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}): the tests with a "
                        f"patched write (ENOSPC) or a file in the way cover the same code")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
