"""Bad flags, bad constructor arguments and bad recorded settings are one clear error, up front: never a
traceback, an endless loop, or a run that only fails when faces reach the last stage (issue #15, items 9, 10,
16, 17). Scripts are called as the command line calls them: `main(parse_opt([...]))`."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from script_cli import cli_error

from cctv.classifier import build_network, make_checkpoint
from cctv.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


# --- item 9: MTCNN's own arguments ----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, word", [
    (dict(min_face_size=0), "min_face_size"),
    (dict(min_face_size=-20), "min_face_size"),
    (dict(factor=1.0), "factor"),
    (dict(factor=0.0), "factor"),
    (dict(thresholds=[0.6, 0.7]), "thresholds"),
    (dict(thresholds=[0.6, 0.7, 1.5]), "thresholds"),
    (dict(image_size=0), "image_size"),
    (dict(margin=-1), "margin"),
])
def test_mtcnn_rejects_bad_arguments_at_construction(kwargs, word):
    from mtcnn import MTCNN

    with pytest.raises(ValueError, match=word):
        MTCNN(**kwargs)


def test_mtcnn_good_arguments_still_detect(shared_dir):
    from cctv.images import load_image
    from mtcnn import MTCNN

    img = load_image(shared_dir / "data" / "multiface.jpg")
    boxes, probs = MTCNN(keep_all=True, min_face_size=20.5, thresholds=(0.6, 0.7, 0.7), factor=0.709).detect(img)
    assert len(boxes) > 0 and probs.min() >= 0.7


# --- item 9: the main job's flags -----------------------------------------------------------------------
@pytest.mark.parametrize("flag, value", [("--min_face_size", 0), ("--threads", -1), ("--max_frames", -3),
                                         ("--max_frames", 0)])
def test_main_job_rejects_bad_flags_before_any_work(flag, value, shared_dir, tmp_path, capsys):
    import cctv_mask_detector

    out = tmp_path / "out.mp4"
    line = cli_error(cctv_mask_detector, ["--footage_path", shared_dir / "data" / "footage" / "channy_in.gif",
                                          "--output_path", out, "--no_voice", "--quiet", flag, value], capsys)
    assert flag in line
    assert not out.exists() and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("script", ["train_mask_detector", "test_detector", "active_learning"])
def test_other_scripts_reject_negative_threads(script, tmp_path, capsys):
    import importlib

    module = importlib.import_module(script)
    argv = {"active_learning": ["run", "--workdir", tmp_path / "w", "--models_dir", tmp_path / "m"],
            "train_mask_detector": ["--train_examples_path", tmp_path / "none",
                                    "--detector_model_output_path", tmp_path / "d.pt"],
            "test_detector": ["--test_examples_path", tmp_path / "none"]}[script]
    line = cli_error(module, argv + ["--threads", "-1"], capsys)
    assert "--threads" in line


# --- item 10: a checkpoint's recorded settings are checked when it is loaded ------------------------------
def write_checkpoint(path, input_size=160, **mtcnn_settings):
    from cctv.classifier import DEFAULT_MTCNN_SETTINGS

    torch.manual_seed(0)
    ckpt = make_checkpoint(build_network("small"), "small", 160, {**DEFAULT_MTCNN_SETTINGS, **mtcnn_settings}, {})
    ckpt["input_size"] = input_size
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("input_size, settings, word", [
    (160, dict(image_size="big"), "image_size"),
    (-5, {}, "input size"),
    ("big", {}, "input size"),
    (160, dict(factor=1.0), "factor"),
    (160, dict(min_face_size=0), "min_face_size"),
    (160, dict(thresholds=[0.6, 0.7]), "thresholds"),
    (160, dict(margin="wide"), "margin"),
])
def test_classifier_checkpoint_with_bad_settings_is_refused_on_load(input_size, settings, word, tmp_path):
    from cctv.classifier import load_classifier

    path = write_checkpoint(tmp_path / "bad.pt", input_size, **settings)
    with pytest.raises(UserError, match=word) as e:
        load_classifier(path)
    assert str(e.value).startswith(str(path))


def test_writeup_checkpoint_with_a_size_its_network_cannot_take_is_refused(tmp_path):
    from cctv.classifier import DEFAULT_MTCNN_SETTINGS, load_classifier

    torch.save(make_checkpoint(build_network("writeup"), "writeup", 96, DEFAULT_MTCNN_SETTINGS, {}), tmp_path / "w.pt")
    with pytest.raises(UserError, match="input size"):
        load_classifier(tmp_path / "w.pt")


def test_main_job_with_a_hanging_checkpoint_is_one_error_line(shared_dir, tmp_path, capsys):
    import cctv_mask_detector

    path = write_checkpoint(tmp_path / "hang.pt", factor=1.0)
    line = cli_error(cctv_mask_detector, ["--footage_path", shared_dir / "data" / "footage" / "channy_in.gif",
                                          "--output_path", tmp_path / "o.mp4", "--detector_model_path", path,
                                          "--no_voice", "--quiet", "--max_frames", 2], capsys)
    assert str(path) in line and "factor" in line


def test_the_shipped_checkpoint_still_loads(repo_root):
    from cctv.classifier import load_classifier

    clf = load_classifier(repo_root / "models" / "detector.pt")
    assert clf.predict(np.zeros((2, 160, 160, 3), np.uint8)).shape == (2,)


# --- item 16: test_detector on nothing to test -----------------------------------------------------------
def test_test_detector_on_empty_class_folders_is_an_error(tmp_path, capsys):
    import test_detector

    for name in ("protected", "unprotected"):
        (tmp_path / "test" / name).mkdir(parents=True)
    line = cli_error(test_detector, ["--test_examples_path", tmp_path / "test", "--cache_dir", tmp_path / "cache",
                                     "--no_progress"], capsys)
    assert str(tmp_path / "test") in line and "no images" in line


# --- item 17: fine-tuning MTCNN on an export without a single face ---------------------------------------
def test_finetune_mtcnn_refuses_labels_without_faces(shared_dir, tmp_path, capsys, monkeypatch):
    import finetune_mtcnn
    from cctv.labels import write_suite_label
    from cctv.images import load_image
    import cctv.finetune.run as finetune_run

    export = tmp_path / "export"
    export.mkdir()
    for jpg in sorted((shared_dir / "data" / "facemask853" / "images").glob("*.jpg"))[:4]:
        shutil.copy(jpg, export / jpg.name)
        h, w = load_image(jpg).shape[:2]
        write_suite_label(export / (jpg.name + ".json"), np.zeros((0, 4), np.float32), [], w, h)
    monkeypatch.setattr(finetune_run, "finetune", lambda *a, **k: pytest.fail("trained on background only"))
    out = tmp_path / "mtcnn.pt"
    line = cli_error(finetune_mtcnn, ["--labels_dir", export, "--mtcnn_model_output_path", out, "--force"], capsys)
    assert str(export) in line and "no labeled faces" in line
    assert not out.exists()


# --- item 9, the other scripts: numeric flags out of range ----------------------------------------------
@pytest.mark.parametrize("script, argv, flag", [
    ("train_mask_detector", ["--lr", "-1"], "--lr"),
    ("train_mask_detector", ["--train_dataset_size_per_class", "-1"], "--train_dataset_size_per_class"),
    ("train_mask_detector", ["--val_fraction", "2"], "--val_fraction"),
    ("prepare_mask_dataset", ["--train_per_class", "-1"], "--train_per_class"),
    ("prepare_mask_dataset", ["--test_fraction", "1.5"], "--test_fraction"),
    ("footages_to_frames", ["--jpeg_quality", "500"], "--jpeg_quality"),
    ("footages_to_frames", ["--threshold", "-0.5"], "--threshold"),
    ("active_learning", ["--holdout_fraction", "2"], "--holdout_fraction"),
    ("active_learning", ["--mtcnn_lr", "-1"], "--mtcnn_lr"),
    ("active_learning", ["--classifier_epochs", "0"], "--classifier_epochs"),
    ("cctv_mask_detector", ["--class_threshold", "2"], "--class_threshold"),
    ("cctv_mask_detector", ["--reconnect_attempts", "-1"], "--reconnect_attempts"),
])
def test_numeric_flags_out_of_range_are_one_error_line(script, argv, flag, shared_dir, tmp_path, capsys, monkeypatch):
    import importlib

    module = importlib.import_module(script)
    footage = shared_dir / "data" / "footage"
    base = {"train_mask_detector": ["--train_examples_path", tmp_path, "--detector_model_output_path", tmp_path / "d.pt",
                                    "--cache_dir", tmp_path / "c"],
            "prepare_mask_dataset": ["--source_path", shared_dir / "data" / "mask_classification", "--output_path",
                                     tmp_path / "ds"],
            "footages_to_frames": ["--footage_dir", footage, "--output_dir", tmp_path / "f"],
            "active_learning": ["run", "--workdir", tmp_path / "w", "--models_dir", tmp_path / "m"],
            "cctv_mask_detector": ["--footage_path", footage / "channy_in.gif", "--output_path", tmp_path / "o.mp4",
                                   "--no_voice", "--quiet"]}[script]
    line = cli_error(module, base + argv, capsys)
    assert flag in line
    assert not (tmp_path / "ds").exists() and not (tmp_path / "f").exists() and not (tmp_path / "o.mp4").exists()
