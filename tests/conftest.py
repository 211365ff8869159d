"""Shared fixtures. Real data lives in ../shared (beside the repo); tests that need it skip without it."""
import os
import sys
from pathlib import Path

import pytest

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


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: data-heavy test (deselect with -m 'not slow')")
