"""The Suite round trip as a user runs it: the venv's spb through `python -m cctv.suite_cli` (credentials checked
first, the download folder made), against the stand-in users can start themselves (`python -m cctv.suite_standin`)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cctv.errors import UserError
from cctv.suite_cli import credentials_problem

SPB = Path(sys.executable).parent / "spb"


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPB_TEAM_NAME", raising=False)
    monkeypatch.delenv("SPB_ACCESS_KEY", raising=False)
    return dict(os.environ)


def test_missing_credentials_are_named_before_spb_runs(no_credentials, tmp_path, monkeypatch):
    assert "no Suite credentials" in credentials_problem() and "spb configure" in credentials_problem()
    monkeypatch.setenv("SPB_TEAM_NAME", "team")
    assert "only one of" in credentials_problem()
    monkeypatch.setenv("SPB_ACCESS_KEY", "key")
    assert credentials_problem() is None
    monkeypatch.delenv("SPB_TEAM_NAME")
    monkeypatch.delenv("SPB_ACCESS_KEY")
    config = tmp_path / "home" / ".spb" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("[default]\nteam_name = team\n")
    assert "no [default] profile with team_name and access_key" in credentials_problem()
    config.write_text("[default]\nteam_name = team\naccess_key = key\n")
    assert credentials_problem() is None


def test_cli_without_credentials_is_one_error_line_and_runs_nothing(no_credentials, tmp_path):
    r = subprocess.run([sys.executable, "-m", "cctv.suite_cli", "download", "-p", "p", "-d", str(tmp_path / "d"), "-y"],
                       cwd=Path(__file__).resolve().parents[1], env=no_credentials, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: no Suite credentials") and "Traceback" not in r.stderr
    assert not (tmp_path / "d").exists()


def test_active_learning_suite_step_names_missing_credentials(no_credentials, tmp_path):
    from cctv.active_learning.suite_sync import SpbConfig, download_ready_labels

    with pytest.raises(UserError, match="no Suite credentials"):
        download_ready_labels(SpbConfig("p"), [], tmp_path / "scratch")


def test_offline_round_trip_with_the_stand_in_users_start(repo_root, shared_dir, tmp_path, no_credentials):
    if not SPB.is_file():
        pytest.skip(f"{SPB} not found: install spb-cli (scripts/setup_env.sh)")
    import footages_to_frames

    (tmp_path / "footages").mkdir()
    os.symlink(shared_dir / "data/footage/channy_in.gif", tmp_path / "footages" / "channy_in.gif")
    footages_to_frames.run(footage_dir=tmp_path / "footages", output_dir=tmp_path / "frames", frames_per_extract=10,
                           pre_labels=True, detector_model_path=repo_root / "models" / "detector.pt")
    standin = subprocess.Popen([sys.executable, "-m", "cctv.suite_standin", "--port", "0", "--project", "entrance"],
                               cwd=repo_root, stdout=subprocess.PIPE, text=True)
    try:
        first = standin.stdout.readline()
        assert first.startswith("Suite stand-in on http://127.0.0.1:"), first
        endpoint = first.split()[3].rstrip(",")
        env = dict(no_credentials, SPB_APP_API_ENDPOINT=endpoint, SPB_TEAM_NAME="team", SPB_ACCESS_KEY="key",
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONPATH=str(repo_root))

        def suite_cli(*args, cwd):
            r = subprocess.run([sys.executable, "-m", "cctv.suite_cli", *args], cwd=cwd, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout

        # -d from the repo: the wrapper runs spb inside the folder (spb alone would drop the labels)
        assert "Successful upload of 2 out of 2 labels" in suite_cli(
            "upload", "dataset", "-p", "entrance", "-n", "cam", "--include-label", "-y", "-d", str(tmp_path / "frames"),
            cwd=repo_root)
        new = tmp_path / "not" / "yet" / "there"  # spb alone fails to write project.json into a missing folder
        assert "Successful download of 2 out of 2 data" in suite_cli("download", "-p", "entrance", "-d", str(new), "-y",
                                                                     cwd=tmp_path)
        classes = json.loads((new / "project.json").read_text())["object_detection"]["object_classes"]
        assert [c["name"] for c in classes] == ["protected", "unprotected"]
        assert sorted(p.name for p in (new / "cam").iterdir()) == sorted(
            [p.name for p in (tmp_path / "frames").glob("*.jpg")] + [p.name + ".json" for p in (tmp_path / "frames").glob("*.jpg")])
    finally:
        standin.terminate()
        standin.wait(timeout=10)
