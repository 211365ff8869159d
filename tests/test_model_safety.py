"""Writing a model never loses the one it replaces (the shipped ones least of all), and the scripts say how the
new model compares with it."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from cctv.model_safety import (SHIPPED_LIST, Figure, check, file_sha256, keep_previous, record, replacement_report,
                               shipped_models)


def test_every_model_in_the_repo_is_listed_as_shipped_and_intact(repo_root):
    tracked = subprocess.run(["git", "ls-files", "models"], cwd=repo_root, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    models = sorted(p for p in tracked.stdout.split() if p.endswith(".pt"))
    assert models and sorted(shipped_models()) == models, "run: python -m cctv.model_safety record <new model>"
    assert check() == []


def test_a_shipped_model_is_copied_aside_once_and_a_users_model_to_prev(tmp_path):
    listing = tmp_path / "SHIPPED.json"
    shipped = tmp_path / "detector.pt"
    shipped.write_bytes(b"the shipped weights")
    listing.write_text('{"models": {"models/detector.pt": {"sha256": "%s"}}}' % file_sha256(shipped))

    kept = keep_previous(shipped, listing)
    assert kept.shipped == "models/detector.pt" and kept.backup == tmp_path / "detector.shipped.pt"
    assert kept.backup.read_bytes() == b"the shipped weights"
    shipped.write_bytes(b"the user's first model")  # what the script then writes
    kept = keep_previous(shipped, listing)  # the second run: the user's model goes to .prev, .shipped stays
    assert kept.shipped is None and kept.backup == tmp_path / "detector.prev.pt"
    assert kept.backup.read_bytes() == b"the user's first model"
    assert (tmp_path / "detector.shipped.pt").read_bytes() == b"the shipped weights"
    assert keep_previous(tmp_path / "new.pt", listing) is None


def test_the_report_says_plainly_when_the_new_model_is_worse(tmp_path):
    kept = keep_previous(_file(tmp_path / "detector.pt"), tmp_path / "none.json")
    figures = (Figure("accuracy", "accuracy"), Figure("false_per_frame", "false/frame", higher_is_better=False))
    old = {"test A": {"accuracy": 0.95, "false_per_frame": 0.3}, "only old": {"accuracy": 1.0}}
    worse = replacement_report(tmp_path / "detector.pt", kept, old,
                               {"test A": {"accuracy": 0.67, "false_per_frame": 0.1}}, figures, "accuracy")
    assert re.search(r"test A\s+0\.950 -> 0\.670\s+0\.300 -> 0\.100\s+WORSE", worse)
    assert "WORSE: on test A the new model's accuracy is below that of your previous model" in worse
    assert "only old" not in worse and f"cp {tmp_path / 'detector.prev.pt'} {tmp_path / 'detector.pt'}" in worse
    better = replacement_report(tmp_path / "detector.pt", kept, old, {"test A": {"accuracy": 0.96}}, figures,
                                "accuracy")
    assert "WORSE" not in better and "not worse" in better
    assert "not compared" in replacement_report(tmp_path / "detector.pt", kept, old, {"other": {}}, figures,
                                                "accuracy")


def test_record_lists_a_new_model_for_the_models_helpers(tmp_path, monkeypatch):
    import cctv.model_safety as ms

    monkeypatch.setattr(ms, "REPO_ROOT", tmp_path)
    listing = tmp_path / "models" / "SHIPPED.json"
    model = _file(tmp_path / "models" / "cctv_classifier.pt")
    record([model], "a new default", listing)
    assert shipped_models(listing)["models/cctv_classifier.pt"]["sha256"] == file_sha256(model)
    assert check(listing) == []
    model.write_bytes(b"retrained")
    assert check(listing)[0][0] == "models/cctv_classifier.pt"


def _file(path, data=b"weights"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def few_faces(shared_dir, tmp_path_factory):
    """mask_dataset-style train/ and test/ of 6 real images per class (test/ beside train/, as the write-up has)."""
    root = tmp_path_factory.mktemp("few")
    src = shared_dir / "data" / "mask_classification"
    for split, offset in (("train", 0), ("test", 100)):
        for cls, name in (("with_mask", "protected"), ("without_mask", "unprotected")):
            (root / split / name).mkdir(parents=True)
            for f in sorted((src / cls).glob("*.jpg"))[offset:offset + 6]:
                shutil.copyfile(f, root / split / name / f.name)
    return root


def test_training_over_the_shipped_classifier_keeps_it_and_compares_on_the_test_folder(repo_root, few_faces,
                                                                                       tmp_path):
    out = tmp_path / "models" / "detector.pt"
    out.parent.mkdir()
    shutil.copyfile(repo_root / "models" / "detector.pt", out)
    r = subprocess.run([sys.executable, "train_mask_detector.py", f"--train_examples_path={few_faces / 'train'}",
                        "--num_epochs=1", "--batch_size_per_class=4", f"--detector_model_output_path={out}",
                        f"--cache_dir={tmp_path / 'cache'}", "--arch=writeup"],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    backup = tmp_path / "models" / "detector.shipped.pt"
    assert file_sha256(backup) == file_sha256(repo_root / "models" / "detector.pt")
    assert f"it replaced the shipped model (models/detector.pt), kept as {backup}" in r.stdout
    assert f"testing on {few_faces / 'test'}" in r.stdout  # the test/ beside train/, with no flag given
    row = re.search(rf"{re.escape(str(few_faces / 'test'))}\s+(\d\.\d+) -> (\d\.\d+).*", r.stdout)
    assert row, r.stdout
    old, new = float(row.group(1)), float(row.group(2))
    assert old > 0.9  # the shipped model on 12 real faces
    assert ("WORSE" in row.group(0)) == (new < old - 0.005)
    assert f"cp {backup} {out}" in r.stdout


def test_finetune_that_is_not_better_says_the_shipped_model_stays(repo_root, shared_dir, tmp_path):
    export = shared_dir / "data/suite_exports/facemask853_2020_format"
    meta = tmp_path / "export" / "meta" / "live"
    (tmp_path / "export" / "labels").mkdir(parents=True)
    meta.mkdir(parents=True)
    for f in sorted((export / "meta/cctv-mask-detector-live-data").glob("*.json"))[:12]:  # a 2020 export, smaller
        shutil.copyfile(f, meta / f.name)
        label = json.loads(f.read_text())["label_path"][0]
        shutil.copyfile(export / label, tmp_path / "export" / label)
    out = tmp_path / "finetuned_mtcnn.pt"
    shutil.copyfile(repo_root / "models" / "finetuned_mtcnn.pt", out)
    r = subprocess.run([sys.executable, "finetune_mtcnn.py", f"--metadata_dir={meta}",
                        f"--labels_dir={tmp_path / 'export' / 'labels'}",
                        f"--images_dir={shared_dir}/data/facemask853/images", "--num_epochs=1", "--stages=onet",
                        "--lr=1e-9", f"--mtcnn_model_output_path={out}"],
                       cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"{out} (now)" in r.stdout  # the file about to be replaced is scored on the same frames
    assert f"not written: {out} still holds the shipped model (models/finetuned_mtcnn.pt)" in r.stdout
    assert file_sha256(out) == file_sha256(repo_root / "models" / "finetuned_mtcnn.pt")


def test_shipped_list_is_where_the_scripts_look(repo_root):
    assert SHIPPED_LIST == repo_root / "models" / "SHIPPED.json"
