"""Every script checks every place it writes before doing any work (issue #15, item 5), and
prepare_mask_dataset.py never eats its own source nor leaves a half-built dataset in the final folders
(item 4). "Before any work" is asserted by making the first piece of work fail the test."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from script_cli import cli_error

ROOT = Path(__file__).resolve().parents[1]


def no_work(*_, **__):
    pytest.fail("work started before the output locations were checked")


@pytest.fixture()
def blocker(tmp_path):
    """A file where a folder should be."""
    path = tmp_path / "blocker"
    path.write_text("a file in the way\n")
    return path


@pytest.fixture()
def readonly_dir(tiny_disk):
    return tiny_disk("1m", "ro")


def class_folder(root, per_class, shared_dir):
    """A small Kaggle-style folder: `per_class` real images of each class."""
    for name in ("with_mask", "without_mask"):
        (root / name).mkdir(parents=True)
        for f in sorted((shared_dir / "data" / "mask_classification" / name).iterdir())[:per_class]:
            shutil.copy(f, root / name / f.name)
    return root


# --- item 5: train_mask_detector.py ---------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--detector_model_output_path", "--cache_dir"])
def test_train_mask_detector_checks_its_outputs_first(flag, blocker, tmp_path, capsys, monkeypatch):
    import train_mask_detector
    import cctv.mask_training

    monkeypatch.setattr(cctv.mask_training, "load_training_faces", no_work)
    args = {"--detector_model_output_path": tmp_path / "models" / "d.pt", "--cache_dir": tmp_path / "cache"}
    args[flag] = blocker / ("d.pt" if flag.endswith("path") else "cache")
    line = cli_error(train_mask_detector, ["--train_examples_path", tmp_path] + [x for kv in args.items() for x in kv],
                     capsys)
    assert str(blocker) in line


def test_train_mask_detector_on_a_read_only_mount(readonly_dir, tmp_path, capsys, monkeypatch):
    import train_mask_detector
    import cctv.mask_training

    monkeypatch.setattr(cctv.mask_training, "load_training_faces", no_work)
    line = cli_error(train_mask_detector, ["--train_examples_path", tmp_path, "--cache_dir", tmp_path / "cache",
                                           "--detector_model_output_path", readonly_dir / "d.pt"], capsys)
    assert str(readonly_dir) in line and "not writable" in line


# --- item 5: finetune_mtcnn.py --------------------------------------------------------------------------
def test_finetune_mtcnn_checks_its_output_first(blocker, tmp_path, capsys, monkeypatch):
    import finetune_mtcnn
    import cctv.finetune.run

    monkeypatch.setattr(cctv.finetune.run, "load_labeled_frames", no_work)
    line = cli_error(finetune_mtcnn, ["--labels_dir", tmp_path, "--mtcnn_model_output_path", blocker / "m.pt"], capsys)
    assert str(blocker) in line


# --- item 5: active_learning.py -------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--workdir", "--models_dir", "--uncertain_frames_dir"])
def test_active_learning_checks_its_folders_first(flag, blocker, tmp_path, capsys, monkeypatch):
    import active_learning
    import cctv.active_learning.loop as loop

    monkeypatch.setattr(loop, "_collect", no_work)
    args = {"--workdir": tmp_path / "work", "--models_dir": tmp_path / "models",
            "--uncertain_frames_dir": tmp_path / "work" / "uncertain"}
    args[flag] = blocker / "x"
    line = cli_error(active_learning, ["run"] + [x for kv in args.items() for x in kv], capsys)
    assert str(blocker) in line


# --- item 5: footages_to_frames.py ----------------------------------------------------------------------
def test_footages_to_frames_checks_its_output_first(blocker, tmp_path, capsys, monkeypatch):
    import footages_to_frames
    import cctv.labels.prelabel

    monkeypatch.setattr(cctv.labels.prelabel, "PreLabeler", no_work)
    (tmp_path / "footage").mkdir()
    line = cli_error(footages_to_frames, ["--footage_dir", tmp_path / "footage", "--output_dir", blocker / "frames",
                                          "--pre_labels"], capsys)
    assert str(blocker) in line


def test_footages_to_frames_on_a_read_only_mount(readonly_dir, tmp_path, capsys, monkeypatch):
    import footages_to_frames
    import cctv.labels.prelabel

    monkeypatch.setattr(cctv.labels.prelabel, "PreLabeler", no_work)
    (tmp_path / "footage").mkdir()
    line = cli_error(footages_to_frames, ["--footage_dir", tmp_path / "footage", "--output_dir", readonly_dir,
                                          "--pre_labels"], capsys)
    assert str(readonly_dir) in line and "not writable" in line


# --- item 5: prepare_mask_dataset.py and test_detector.py ----------------------------------------------
def test_prepare_mask_dataset_checks_its_output_first(blocker, tmp_path, capsys, monkeypatch):
    import prepare_mask_dataset
    import cctv.labels

    monkeypatch.setattr(cctv.labels, "load_labels", no_work)
    line = cli_error(prepare_mask_dataset, ["--labels_dir", tmp_path, "--output_path", blocker / "ds"], capsys)
    assert str(blocker) in line


def test_test_detector_checks_its_cache_first(blocker, tmp_path, capsys, monkeypatch):
    import test_detector

    monkeypatch.setattr(test_detector, "face_crops_from_folder", no_work)
    line = cli_error(test_detector, ["--test_examples_path", tmp_path, "--cache_dir", blocker / "c"], capsys)
    assert str(blocker) in line


# --- item 4: prepare_mask_dataset.py never deletes its own source -------------------------------------
def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


@pytest.mark.parametrize("case", ["source inside output", "output inside source", "same folder",
                                  "images inside output"])
def test_prepare_mask_dataset_refuses_overlapping_source_and_output(case, shared_dir, tmp_path, capsys):
    import prepare_mask_dataset

    out = tmp_path / "ds"
    prepare_mask_dataset.run(source_path=class_folder(tmp_path / "src", 6, shared_dir), output_path=out,
                             train_per_class=4, progress=False)
    capsys.readouterr()
    before = listing(tmp_path)
    source = {"source inside output": ["--source_path", out / "train"],  # train/ holds protected/, unprotected/
              "output inside source": ["--source_path", tmp_path / "src", "--output_path", tmp_path / "src" / "ds"],
              "same folder": ["--source_path", out / "train", "--output_path", out / "train"],
              "images inside output": ["--labels_dir", tmp_path / "labels", "--images_dir", out / "train"]}[case]
    argv = source + (["--output_path", out] if "--output_path" not in source else []) + ["--overwrite"]
    line = cli_error(prepare_mask_dataset, argv, capsys)
    assert "overlap" in line
    assert listing(tmp_path) == before  # nothing deleted, nothing added


def test_prepare_mask_dataset_overwrite_replaces_the_dataset_whole(shared_dir, tmp_path, capsys):
    import prepare_mask_dataset

    out = tmp_path / "ds"
    prepare_mask_dataset.run(source_path=class_folder(tmp_path / "a", 6, shared_dir), output_path=out,
                             train_per_class=4, progress=False)
    first = listing(out)
    assert len(first) == 12 and not [p for p in out.rglob(".*")]
    report = prepare_mask_dataset.run(source_path=class_folder(tmp_path / "b", 3, shared_dir), output_path=out,
                                      train_per_class=2, overwrite=True, progress=False)
    assert len(listing(out)) == 6 == sum(report.written.values())
    assert not [p for p in out.rglob(".*")]  # no build folder left


@pytest.mark.slow
def test_ctrl_c_in_prepare_mask_dataset_keeps_the_previous_dataset_whole(shared_dir, tmp_path):
    """A real SIGINT in the middle of a real run: the final folders still hold the previous dataset, exactly,
    and the half-built one is gone."""
    out = tmp_path / "ds"
    script = str(ROOT / "prepare_mask_dataset.py")
    small = class_folder(tmp_path / "small", 5, shared_dir)
    subprocess.run([sys.executable, script, "--source_path", str(small), "--output_path", str(out),
                    "--train_per_class", "3"], check=True, capture_output=True, timeout=120)
    before = listing(out)
    proc = subprocess.Popen([sys.executable, script, "--source_path", str(shared_dir / "data" / "mask_classification"),
                             "--output_path", str(out), "--overwrite"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even under nohup &
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        building = [p for p in out.rglob("*.jpg") if any(part.startswith(".") for part in p.relative_to(out).parts)]
        if len(building) >= 20:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert listing(out) == before
    assert not [p for p in out.rglob(".*")]
