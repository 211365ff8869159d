"""The mask classifier: the write-up's network, checkpoints, training on real faces, and the three scripts."""
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from cctv.classifier import (ARCHITECTURES, CLASS_NAMES, MaskClassifier, WriteupNet, build_network,
                             load_classifier, save_classifier)
from cctv.errors import UserError
from cctv.face_dataset import face_crops_from_labels, split_by_image
from cctv.mask_metrics import binary_metrics, roc_auc
from cctv.mask_training import Augment, balanced_batches, train_classifier

FACEMASK = "data/facemask853"


@pytest.fixture(scope="module")
def labeled_faces(shared_dir):
    """Real face crops cut from the labeled boxes of 120 facemask853 photos, split by photo."""
    from cctv.labels import load_labels

    items = load_labels(shared_dir / FACEMASK / "annotations", images_dir=shared_dir / FACEMASK / "images").items
    train_items, test_items = split_by_image(sorted(items, key=lambda i: i.key)[:160], 0.3, seed=0)
    return (face_crops_from_labels(train_items, progress=False),
            face_crops_from_labels(test_items, progress=False))


def balanced(faces, per_class, seed=0):
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.permutation(np.flatnonzero(faces.labels == c))[:per_class] for c in (0, 1)])
    return faces.subset(idx)


def test_writeup_network_is_exactly_the_original():
    net = WriteupNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {"conv1.weight": (5, 3, 5, 5), "conv1.bias": (5,), "conv2.weight": (10, 5, 5, 5),
                      "conv2.bias": (10,), "fc.weight": (1, 640), "fc.bias": (1,)}
    assert net.pool1.kernel_size == 4 and net.pool2.kernel_size == 4
    x = torch.randn(2, 3, 160, 160)
    ref = torch.relu(torch.nn.functional.max_pool2d(net.conv1(x), 4))
    ref = torch.relu(torch.nn.functional.max_pool2d(net.conv2(ref), 4))
    assert torch.allclose(net(x), net.fc(ref.flatten(1)).squeeze(1))


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_predict_shapes_and_standardisation(arch):
    torch.manual_seed(0)
    clf = MaskClassifier(build_network(arch), arch)
    crops = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    p = clf.predict(crops)
    assert p.shape == (3,) and p.dtype == np.float32 and ((p > 0) & (p < 1)).all()
    assert clf.predict(np.zeros((0, 160, 160, 3), np.uint8)).shape == (0,)
    x = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() - 127.5) / 128
    assert np.allclose(p, torch.sigmoid(clf.network(x)).detach().numpy(), atol=1e-6)
    # a crop of another size is resized, not rejected
    assert clf.predict(crops[:, :80, :80]).shape == (3,)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    meta = {"training": {"sources": [{"source": "x", "faces": 3}]}, "test_metrics": [{"accuracy": 0.5}]}
    clf = MaskClassifier(build_network("small"), "small", metadata=meta)
    path = tmp_path / "m" / "detector.pt"
    save_classifier(clf, path)
    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["arch"] == "small" and raw["input_size"] == 160 and raw["class_names"] == list(CLASS_NAMES)
    assert raw["normalization"]["mean"] == 127.5 and raw["normalization"]["std"] == 128.0
    loaded = load_classifier(path)
    crops = np.random.default_rng(1).integers(0, 256, (4, 160, 160, 3), dtype=np.uint8)
    assert np.array_equal(loaded.predict(crops), clf.predict(crops))
    assert loaded.metadata == meta and loaded.class_names == CLASS_NAMES
    assert loaded.mtcnn_settings["image_size"] == 160 and "thresholds" in loaded.mtcnn_settings
    assert not list(path.parent.glob(".*tmp*"))  # atomic save leaves no temporary file


def test_bad_checkpoints_fail_with_the_file_named(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"pnet.conv1.weight": torch.zeros(3)}, foreign)
    wrong = tmp_path / "wrong_shapes.pt"
    ckpt = MaskClassifier(build_network("small"), "small").checkpoint()
    ckpt["arch"] = "writeup"
    torch.save(ckpt, wrong)
    for path, why in ((corrupt, "not a readable"), (foreign, "not a mask classifier"),
                      (wrong, "do not fit"), (tmp_path / "missing.pt", "no such")):
        with pytest.raises(UserError, match=why) as e:
            load_classifier(path)
        assert str(path) in str(e.value)


def test_metrics_match_definitions():
    rng = np.random.default_rng(0)
    y, s = rng.integers(0, 2, 200), rng.random(200).round(1)  # rounding makes ties
    pairs = [(a > b) + 0.5 * (a == b) for a in s[y == 1] for b in s[y == 0]]
    assert roc_auc(y, s) == pytest.approx(np.mean(pairs))
    m = binary_metrics([1, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.1, 0.7])
    assert (m["num_true_positive"], m["num_false_positive"], m["num_true_negative"], m["num_false_negative"]) == (
        2, 1, 1, 1)
    assert m["accuracy"] == pytest.approx(0.6) and m["precision"] == pytest.approx(2 / 3)


def test_balanced_batches_and_augmentation():
    labels = np.array([0] * 5 + [1] * 23)
    batches = balanced_batches(labels, 4, np.random.default_rng(0))
    assert len(batches) == 6 and all((labels[b] == 0).sum() == 4 == (labels[b] == 1).sum() for b in batches)
    assert set(np.concatenate(batches)) == set(range(28))  # every face is used in an epoch
    x = np.full((8, 160, 160, 3), 128, np.uint8)
    x[:, :, :80, 0] = 250
    out = Augment(0)(x)
    assert out.shape == x.shape and out.dtype == np.uint8
    assert not np.array_equal(out[0], out[1])  # per-face randomness
    assert np.array_equal(Augment(3)(x), Augment(3)(x))  # seeded


def test_the_cctv_colour_cast_tints_and_darkens_faces_warm_and_cool():
    x = np.full((200, 32, 32, 3), 128, np.uint8)
    plain = dict(p_gray=0.0, saturation=0.0, contrast=0.0, brightness=0.0, p_noise=0.0, p_low_res=0.0)
    red_over_blue = [c[..., 0].mean() / max(c[..., 2].mean(), 1) for c in Augment(0, p_cast=1.0, **plain)(x)]
    assert min(red_over_blue) < 0.6 and max(red_over_blue) > 1.6  # cool and warm casts
    assert np.mean([c.mean() for c in Augment(0, p_cast=1.0, **plain)(x)]) < 110  # underexposed
    untouched = [c[..., 0].mean() / c[..., 2].mean() for c in Augment(0, **plain)(x)]
    assert 0.9 < min(untouched) and max(untouched) < 1.1  # off by default (the write-up's classifier)


@pytest.mark.parametrize("arch", ["small", "writeup"])
def test_training_on_real_faces_lowers_loss_and_beats_chance(labeled_faces, arch):
    train, test = labeled_faces
    train, test = balanced(train, 60), balanced(test, 25)
    torch.set_num_threads(2)
    network, history, summary = train_classifier(train.crops, train.labels, arch, num_epochs=8,
                                                 batch_size_per_class=8, val_fraction=0.1, progress=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"] * 0.9
    acc = binary_metrics(test.labels, MaskClassifier(network, arch).predict(test.crops))["accuracy"]
    assert acc >= 0.7, f"held-out accuracy {acc:.2f} on {len(test)} faces (chance: 0.5)"
    assert 1 <= summary["best_epoch"] <= 8


def run_script(repo_root, *args):
    return subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_folders(shared_dir, tmp_path_factory):
    """Kaggle-style folders of 4 real images per class with odd names; `train` also has an unreadable file."""
    root = tmp_path_factory.mktemp("tiny")
    src = shared_dir / "data" / "mask_classification"
    for split, offset in (("train", 0), ("test", 40)):
        for cls in ("with_mask", "without_mask"):
            (root / split / cls).mkdir(parents=True)
            for i, f in enumerate(sorted((src / cls).glob("*.jpg"))[offset:offset + 4]):
                shutil.copyfile(f, root / split / cls / f"photo {i} ({cls}).JPG")
    (root / "train" / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


@pytest.mark.slow
def test_train_script_with_unreadable_image_and_live_labels_then_test_block(repo_root, tiny_folders, shared_dir,
                                                                              tmp_path):
    model, cache = tmp_path / "detector.pt", tmp_path / "cache"
    live = shared_dir / "data/suite_exports/facemask853_spb_download"
    r = run_script(repo_root, "train_mask_detector.py", "--train_examples_path", str(tiny_folders / "train"),
                   "--labels_dir", str(live), "--num_epochs", "1", "--batch_size_per_class", "8",
                   "--detector_model_output_path", str(model), "--cache_dir", str(cache))
    assert r.returncode == 0, r.stderr
    assert "broken.jpg" in r.stdout and re.search(r"unreadable\s", r.stdout)
    folder, labeled = load_classifier(model).metadata["training"]["sources"]
    assert folder["unreadable"] == 1 and folder["faces"] == 8
    assert labeled["source"] == str(live) and labeled["protected"] > 0 and labeled["unprotected"] > 0

    r = run_script(repo_root, "test_detector.py", "--detector_model_path", str(model), "--test_examples_path",
                   str(tiny_folders / "test"), "--cache_dir", str(cache), "--no_progress")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    keys = ["num_true_positive", "num_false_positive", "num_true_negative", "num_false_negative", "num_correct",
            "num_incorrect"]
    assert lines[0] == "All done!"
    values = {}
    for key, line in zip(keys, lines[1:7]):
        m = re.fullmatch(rf"{key}: (\d+)", line)
        assert m, line
        values[key] = int(m.group(1))
    assert re.fullmatch(r"Accuracy: [01]\.\d\d", lines[7])
    assert values["num_true_positive"] + values["num_false_negative"] == 4  # 4 protected test images
    assert values["num_correct"] == values["num_true_positive"] + values["num_true_negative"]
    assert values["num_correct"] + values["num_incorrect"] == 8
    for name in ("Precision", "Recall", "F1", "ROC AUC"):
        assert any(re.fullmatch(rf"{name}: \d\.\d+", line) for line in lines[8:])
    assert any(re.fullmatch(r"num_no_face_found: \d+", line) for line in lines[8:])


def test_scripts_refuse_bad_input_in_one_line(repo_root, tiny_folders, tmp_path):
    corrupt = tmp_path / "detector.pt"
    corrupt.write_bytes(b"garbage")
    cases = [("test_detector.py", "--detector_model_path", str(corrupt), "--test_examples_path",
              str(tiny_folders / "test")),
             ("train_mask_detector.py", "--train_examples_path", str(tmp_path), "--detector_model_output_path",
              str(tmp_path / "out.pt"))]
    for args in cases:
        r = run_script(repo_root, *args)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert str(tmp_path) in r.stderr
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.slow
def test_prepare_dataset_split_is_seeded_and_counts_unreadable(repo_root, tiny_folders, shared_dir, tmp_path):
    args = ["prepare_mask_dataset.py", "--source_path", str(tiny_folders / "train"), "--train_per_class", "3",
            "--labels_dir", str(shared_dir / "data/suite_exports/facemask853_spb_download")]
    r = run_script(repo_root, *args, "--output_path", str(tmp_path / "a"))
    assert r.returncode == 0, r.stderr
    assert "unreadable files skipped: 1" in r.stdout
    out = tmp_path / "a"
    with_mask = {p.name for p in (out / "train" / "protected").glob("photo*")}
    assert len(with_mask) == 3 and len(list((out / "test" / "protected").glob("photo*"))) == 1  # 4 readable
    assert len(list((out / "test" / "unprotected").glob("photo*"))) == 1
    # labeled photos: every face of a photo lands in one split
    photos = {split: {p.name.rsplit("-face", 1)[0] for c in CLASS_NAMES for p in (out / split / c).glob("*-face*")}
              for split in ("train", "test")}
    assert photos["train"] and photos["test"] and not photos["train"] & photos["test"]
    # same seed, same split; a second run into a filled folder refuses without --overwrite
    r2 = run_script(repo_root, *args, "--output_path", str(tmp_path / "b"))
    assert {p.name for p in (tmp_path / "b" / "train" / "protected").glob("photo*")} == with_mask
    r3 = run_script(repo_root, *args, "--output_path", str(out))
    assert r2.returncode == 0 and r3.returncode == 2 and "--overwrite" in r3.stderr


def test_shipped_model_on_held_out_real_faces(repo_root, shared_dir):
    """models/detector.pt on faces of facemask853 photos it was not trained on (the prepare script's test split)."""
    from cctv.labels import load_labels

    clf = load_classifier(repo_root / "models" / "detector.pt")
    assert clf.input_size == 160 and clf.class_names == ("unprotected", "protected")
    assert {"accuracy", "source"} <= set(clf.metadata["test_metrics"][0])
    items = load_labels(shared_dir / FACEMASK / "annotations", images_dir=shared_dir / FACEMASK / "images").items
    _, test_items = split_by_image(items, 0.2, seed=0)
    faces = face_crops_from_labels(test_items[:80], progress=False)
    m = binary_metrics(faces.labels, clf.predict(faces.crops))
    specificity = m["num_true_negative"] / (m["num_true_negative"] + m["num_false_positive"])
    assert m["accuracy"] >= 0.9 and m["recall"] >= 0.9 and specificity >= 0.75, m


def test_training_feeds_the_network_the_normalisation_its_checkpoint_records(monkeypatch):
    """The network is trained on exactly the input the checkpoint tells a user to give it (issue #19)."""
    import cctv.mask_training as training

    seen = []

    def network_that_records_its_input(arch):
        net = build_network(arch)
        net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        return net

    monkeypatch.setattr(training, "build_network", network_that_records_its_input)
    crops = np.concatenate([np.full((4, 160, 160, 3), 200, np.uint8), np.full((4, 160, 160, 3), 40, np.uint8)])
    network, _, _ = train_classifier(crops, np.array([1] * 4 + [0] * 4), "writeup", num_epochs=1,
                                     batch_size_per_class=2, val_fraction=0.0, augment=False, progress=False)
    recorded = MaskClassifier(network, "writeup").checkpoint()["normalization"]
    expected = sorted((v - recorded["mean"]) / recorded["std"] for v in (40, 200))
    assert seen and sorted({float(v) for x in seen for v in torch.unique(x)}) == pytest.approx(expected)
