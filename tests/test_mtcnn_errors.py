"""mtcnn stands alone (it never imports cctv) and raises its own errors, naming the file; cctv shows them to the
user as one line."""
import subprocess
import sys

import pytest

import mtcnn.nets
from mtcnn import MTCNN, MTCNNWeightsError


def test_importing_and_running_mtcnn_does_not_import_cctv(repo_root):
    code = ("import sys, numpy as np; from mtcnn import MTCNN; MTCNN().detect(np.zeros((40, 40, 3), np.uint8)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cctv'))")
    r = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_missing_pretrained_weights_name_the_file_and_the_job_says_it_in_one_line(tmp_path, monkeypatch, capsys,
                                                                                 repo_root, shared_dir):
    import cctv_mask_detector

    monkeypatch.setattr(mtcnn.nets, "pretrained_weights_dir", lambda: tmp_path)  # a facenet-pytorch without data/
    expected = f"{tmp_path / 'pnet.pt'}: facenet-pytorch's pretrained weights are missing"
    with pytest.raises(MTCNNWeightsError, match=expected):
        MTCNN()
    opt = cctv_mask_detector.parse_opt(["--footage_path", str(shared_dir / "data/footage/channy_in.gif"),
                                        "--detector_model_path", str(repo_root / "models/detector.pt"),
                                        "--output_path", str(tmp_path / "out.mp4"), "--no_voice", "--quiet"])
    with pytest.raises(SystemExit) as exit_:
        cctv_mask_detector.main(opt)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), lines
