"""Several sources for one job: --footage_path A B C and --cameras cameras.yaml, checked before Ray starts;
the single-source job never imports Ray."""
import subprocess
import sys
from pathlib import Path

import pytest

from cctv.cameras import cameras_from_paths, cameras_from_yaml
from cctv.errors import UserError
from cctv.pipeline import JobConfig

ROOT = Path(__file__).resolve().parents[1]
BASE = JobConfig(detector_model_path=str(ROOT / "models/detector.pt"))


def test_folder_is_one_camera_per_file_with_unique_names(shared_dir, tmp_path):
    footage = shared_dir / "data/footage"
    cams = cameras_from_paths([str(footage), str(footage / "channy_in.gif"), "rtsp://10.0.0.5/live"], BASE, tmp_path)
    names = [c.name for c in cams]
    assert "channy_in" in names and "channy_in_2" in names and names[-1] == "live"
    assert len(set(names)) == len(names) == len(list(footage.glob("*.*"))) - 1 + 2  # the LICENSE is no video
    assert [c.live for c in cams][-1] and not any(c.live for c in cams[:-1])
    assert all(Path(c.cfg.output_path).parent == tmp_path for c in cams)


def test_yaml_per_camera_settings_and_outputs(shared_dir, tmp_path):
    yaml_file = tmp_path / "cameras.yaml"
    yaml_file.write_text(f"""
defaults:
  alert_frames: 3
cameras:
  - name: entrance
    source: {shared_dir}/data/footage/channy_in.gif
    output_dir: {tmp_path}/entrance
    alert_threshold: 0.5
  - source: {shared_dir}/data/footage/channy_out.gif
""")
    a, b = cameras_from_yaml(yaml_file, BASE, tmp_path / "all")
    assert (a.name, a.cfg.alert_threshold, a.cfg.alert_frames) == ("entrance", 0.5, 3)
    assert a.cfg.output_path == str(tmp_path / "entrance" / "entrance.mp4")
    assert (b.name, b.cfg.alert_threshold) == ("channy_out", 0.75)
    assert b.cfg.output_path == str(tmp_path / "all" / "channy_out.mp4")


@pytest.mark.parametrize("text, problem", [
    ("cameras: []", "needs a 'cameras:' list"),
    ("cameras:\n  - name: x", "camera 1 needs a 'source'"),
    ("cameras:\n  - source: 0\n    alert_treshold: 0.5", "unknown setting(s) alert_treshold"),
    ("cameras:\n  - source: 0\n    thresholds: [0.1, 0.2, 0.2]", "thresholds: the detectors are shared"),
    ("cameras:\n  - source: nowhere.mp4", "nowhere.mp4: no such file or folder"),
    ("cameras: [", "not valid YAML"),
])
def test_yaml_mistakes_are_one_clear_error(tmp_path, text, problem):
    yaml_file = tmp_path / "cameras.yaml"
    yaml_file.write_text(text)
    with pytest.raises(UserError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        cameras_from_yaml(yaml_file, BASE, tmp_path)


def test_cli_mistakes_before_ray_starts(shared_dir, tmp_path):
    clip = str(shared_dir / "data/footage/channy_in.gif")
    for args, problem in [([clip, clip, "--output_path", str(tmp_path / "x.mp4")], "is a folder"),
                          ([clip, clip, "--demo"], "--demo and --display take one source"),
                          ([clip, str(tmp_path / "missing.mp4")], "missing.mp4: no such file")]:
        r = subprocess.run([sys.executable, "cctv_mask_detector.py", "--footage_path", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and problem in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1  # the error line only: Ray never started


def test_single_source_job_does_not_import_ray(shared_dir, tmp_path):
    code = ("import sys, cctv_mask_detector as m; "
            f"m.run(footage_path=[{str(shared_dir / 'data/footage/channy_in.gif')!r}], max_frames=4, quiet=True, "
            f"no_voice=True, output_path={str(tmp_path / 'one.mp4')!r}); print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False" and (tmp_path / "one.mp4").exists()
