"""The original write-up followed step by step (benchmarks/writeup_walkthrough.py) in a copy of the repo: every
step exits 0 and says what it did, and the shipped models survive (slow: about 10-15 minutes on 2 cores)."""
import sys

import pytest


@pytest.mark.slow
def test_following_the_writeup_never_leaves_the_user_worse_off(repo_root, shared_dir, tmp_path, capsys):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    import writeup_walkthrough

    code = writeup_walkthrough.main(["--shared", str(shared_dir), "--workdir", str(tmp_path / "copy"),
                                     "--num_epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "shipped models/detector.pt: intact at models/detector.shipped.pt" in out
    assert "real repo models untouched: True" in out and "LOST" not in out
