"""Shared fixtures. Real data lives in ../shared (beside the repo); tests that need it skip without it."""
import os
import sys
from pathlib import Path

# Before anything imports torch: OpenMP threads that sleep while they wait, not spin, so that the suite
# (and the scripts it starts, which inherit this) keeps its speed on a machine shared with other work.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED} not found: the real data and references live in ../shared beside the repo")
    return SHARED


@pytest.fixture(scope="session")
def repo_root():
    return ROOT
