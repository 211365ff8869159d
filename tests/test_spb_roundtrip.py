"""The labeling round trip with the real `spb` CLI (spb-cli, installed --no-deps in .venv) against a loopback
stand-in of the Suite API (cctv/suite_standin.py): frames + pre-labels from footages_to_frames.py ->
`spb upload dataset --include-label` -> `spb download` -> cctv.labels reads the same boxes back."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import footages_to_frames
from cctv.labels import load_labels
from cctv.suite_standin import SuiteStandIn

SPB = Path(sys.executable).parent / "spb"


def spb(args, cwd, suite, home):
    """Run the real CLI: credentials from the environment, endpoint = the stand-in, no prompts, bounded."""
    env = dict(os.environ, SPB_APP_API_ENDPOINT=suite.endpoint, SPB_TEAM_NAME="team", SPB_ACCESS_KEY="key",
               HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    run = subprocess.run([str(SPB), *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def frames_with_pre_labels(shared_dir, tmp_path_factory):
    if not SPB.is_file():
        pytest.skip(f"{SPB} not found: install spb-cli (scripts/setup_env.sh)")
    import torch

    from cctv.classifier import MaskClassifier, build_network, save_classifier

    root = tmp_path_factory.mktemp("roundtrip")
    torch.manual_seed(0)
    save_classifier(MaskClassifier(build_network("writeup"), "writeup"), root / "detector.pt")
    (root / "footages").mkdir()
    os.symlink(shared_dir / "data" / "footage" / "channy_in.gif", root / "footages" / "channy_in.gif")
    project_json = shared_dir / "data" / "suite_exports" / "facemask853_spb_download" / "project.json"
    footages_to_frames.run(footage_dir=root / "footages", output_dir=root / "frames", frames_per_extract=10,
                           pre_labels=True, detector_model_path=root / "detector.pt", project_json=project_json)
    return root, json.loads(project_json.read_text())


def test_upload_with_pre_labels_then_download_gives_the_same_boxes(frames_with_pre_labels, tmp_path):
    root, label_interface = frames_with_pre_labels
    frames = tmp_path / "frames"
    shutil.copytree(root / "frames", frames)  # spb rewrites the label files it uploads
    pre_labels = {item.key: item for item in load_labels(frames).items}
    assert sum(len(item.boxes) for item in pre_labels.values()) > 0

    with SuiteStandIn("cctv-mask-detector", label_interface) as suite:
        # run from inside the frames folder: spb-cli opens each label by its path relative to the folder
        out = spb(["upload", "dataset", "-p", "cctv-mask-detector", "-n", "entrance", "--include-label", "-y"],
                  cwd=frames, suite=suite, home=tmp_path)
        n = len(pre_labels)
        assert f"Successful upload of {n} out of {n} data" in out
        assert f"Successful upload of {n} out of {n} labels" in out
        for key, stored in suite.labels.items():
            assert stored.image == (frames / key[1]).read_bytes()  # the image bytes PUT to the presigned URL
        assert sorted(k for _, k in suite.labels) == sorted(pre_labels)

        download = tmp_path / "download"
        download.mkdir()
        out = spb(["download", "-p", "cctv-mask-detector", "-d", str(download), "-y"], cwd=tmp_path, suite=suite,
                  home=tmp_path)
        assert f"Successful download of {n} out of {n} data" in out

    downloaded = load_labels(download)
    assert downloaded.report.format == "spb download" and downloaded.report.read == n
    for item in downloaded.items:
        dataset, _, key = item.key.partition("/")
        assert dataset == "entrance"
        assert item.image_path.read_bytes() == (frames / key).read_bytes()
        np.testing.assert_array_equal(item.boxes, pre_labels[key].boxes)
        assert item.classes == pre_labels[key].classes


def test_unknown_project_uploads_nothing(frames_with_pre_labels, tmp_path):
    root, label_interface = frames_with_pre_labels
    with SuiteStandIn("cctv-mask-detector", label_interface) as suite:
        out = spb(["upload", "dataset", "-p", "no-such-project", "-n", "entrance", "--include-label", "-y"],
                  cwd=root / "frames", suite=suite, home=tmp_path)
        assert "Please check your project name" in out
        assert suite.labels == {}


def test_upload_with_dir_from_elsewhere_drops_the_labels(frames_with_pre_labels, tmp_path):
    """Why the README says `cd frames` first: spb-cli 0.19.4 opens each label by its path relative to --dir."""
    root, label_interface = frames_with_pre_labels
    frames = tmp_path / "frames"
    shutil.copytree(root / "frames", frames)
    with SuiteStandIn("cctv-mask-detector", label_interface) as suite:
        out = spb(["upload", "dataset", "-p", "cctv-mask-detector", "-n", "entrance", "--include-label", "-y",
                   "-d", "frames"], cwd=tmp_path, suite=suite, home=tmp_path)
        assert "Label json file is not existed." in out
        assert suite.labels and all(stored.info is None for stored in suite.labels.values())
