"""Training the mask classifier on face crops: class-balanced batches, augmentation, a validation split, and
the best epoch kept. Everything is seeded, so a run is reproducible on the same machine."""
import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .classifier import (DEFAULT_MTCNN_SETTINGS, MaskClassifier, build_network, load_classifier, save_classifier,
                         standardise)
from .atomic import check_writable, check_writable_dir
from .errors import UserError, check_range, check_threads
from .face_dataset import DEFAULT_CACHE_DIR, concat, face_crops_from_folder, face_crops_from_labels
from .mask_metrics import binary_metrics, evaluate_classifier
from .model_safety import Figure, keep_previous, replacement_report
from .tables import format_table


def seed_everything(seed):
    np.random.seed(seed)
    torch.manual_seed(seed)


class Augment:
    """Random changes a face crop survives at the camera: box jitter (shift, zoom, small rotation), mirror,
    low resolution (CCTV faces are often 15-40 px), colour, exposure and sensor noise. Per face, on uint8 with
    OpenCV (warpAffine, resize, LUT): cheaper than the network's own step."""

    def __init__(self, seed=0, shift=0.08, zoom=0.12, rotate_deg=10, p_low_res=0.35, low_res=(12, 48),
                 brightness=0.3, contrast=0.3, saturation=0.4, p_gray=0.1, p_noise=0.25, noise=5.0,
                 white_balance=0.05, p_cast=0.0, cast=0.6, exposure=(0.4, 1.0)):
        self.rng = np.random.default_rng(seed)
        self.shift, self.zoom, self.rotate = shift, zoom, rotate_deg
        self.p_low_res, self.low_res = p_low_res, low_res
        self.brightness, self.contrast, self.saturation, self.p_gray = brightness, contrast, saturation, p_gray
        self.p_noise, self.noise = p_noise, noise
        self.white_balance = white_balance  # per-channel gain: cameras' white balance, GIF palettes
        # CCTV: a strong warm or cool cast (red/blue gains 1 +- up to `cast`) with underexposure, on p_cast of
        # the faces; a colour cast must not pass for skin or for a mask
        self.p_cast, self.cast, self.exposure = p_cast, cast, exposure

    def __call__(self, crops):
        """crops: uint8 (B,S,S,3) -> augmented uint8 (B,S,S,3)."""
        return np.stack([self.colour(self.resolution(self.geometry(c))) for c in crops])

    def geometry(self, crop):
        s, r = crop.shape[0], self.rng
        m = cv2.getRotationMatrix2D((s / 2, s / 2), r.uniform(-self.rotate, self.rotate),
                                    1 + r.uniform(-self.zoom, self.zoom))
        m[:, 2] += r.uniform(-self.shift, self.shift, 2) * s
        if r.random() < 0.5:  # mirror
            m[0] = -m[0]
            m[0, 2] += s
        return cv2.warpAffine(crop, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def resolution(self, crop):
        if self.rng.random() >= self.p_low_res:
            return crop
        s, low = crop.shape[0], int(self.rng.integers(self.low_res[0], self.low_res[1] + 1))
        small = cv2.resize(crop, (low, low), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (s, s), interpolation=cv2.INTER_AREA)  # as crop_faces upsamples a small face

    def colour(self, crop):
        """Saturation (some faces to grayscale), then contrast, brightness and per-channel gain as one
        lookup table; sensor noise on some faces."""
        r = self.rng
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        saturation = 0.0 if r.random() < self.p_gray else 1 + r.uniform(-self.saturation, self.saturation)
        crop = cv2.addWeighted(crop, saturation, cv2.merge([gray, gray, gray]), 1 - saturation, 0)
        mean, contrast = float(gray.mean()), 1 + r.uniform(-self.contrast, self.contrast)
        gain = (1 + r.uniform(-self.brightness, self.brightness)) * (1 + r.uniform(-self.white_balance,
                                                                                  self.white_balance, 3))
        if self.p_cast and r.random() < self.p_cast:
            t = r.uniform(-self.cast, self.cast)
            gain = gain * np.array([1 + t, 1, 1 - t]) * r.uniform(*self.exposure)
        levels = np.arange(256, dtype=np.float32)[:, None]
        lut = np.clip((mean + (levels - mean) * contrast) * gain, 0, 255).astype(np.uint8)
        crop = cv2.LUT(crop, lut[:, None, :])
        if r.random() < self.p_noise:
            noise = r.normal(0, self.noise, crop.shape).astype(np.float32)
            crop = np.clip(crop + noise, 0, 255).astype(np.uint8)
        return crop


def stratified_split(labels, fraction, seed):
    """(train index, validation index): `fraction` of each class to validation, at least one each if possible."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(max(int(round(len(idx) * fraction)), 1 if fraction > 0 else 0), len(idx) - 1)
        val += idx[:n_val].tolist()
        train += idx[n_val:].tolist()
    return np.array(sorted(train), np.int64), np.array(sorted(val), np.int64)


def balanced_batches(labels, per_class, rng):
    """One epoch of batches with `per_class` examples of each class. The epoch covers the larger class once;
    the smaller classes are cycled (reshuffled each pass) to keep every batch balanced."""
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    n_batches = math.ceil(max(len(i) for i in by_class) / per_class)

    def stream(idx):
        need = n_batches * per_class
        reps = math.ceil(need / len(idx))
        return np.concatenate([rng.permutation(idx) for _ in range(reps)])[:need]

    streams = [stream(idx) for idx in by_class]
    return [np.concatenate([s[b * per_class:(b + 1) * per_class] for s in streams]) for b in range(n_batches)]


def evaluate_network(network, crops, labels, arch):
    """(mean BCE loss, metrics dict) of a network on crops."""
    probs = MaskClassifier(network, arch, input_size=crops.shape[1]).predict(crops)  # as trained: no resize
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    network.train()
    return loss, binary_metrics(labels, probs)


@dataclass
class TrainConfig:
    """`train_mask_detector.py`'s settings (its flags' names): the one place their defaults are written."""
    train_examples_path: tuple = ("mask_dataset/train",)
    train_dataset_size_per_class: int | None = None  # None: all
    batch_size_per_class: int = 16
    num_epochs: int = 50
    detector_model_output_path: str = "models/detector.pt"
    mtcnn_model_path: str | None = None  # None: the pretrained MTCNN
    pretrained_detector_model_path: str | None = None
    labels_dir: str | None = None
    metadata_dir: str | None = None
    images_dir: str | None = None
    class_map: str | None = None
    test_examples_path: tuple = ()
    arch: str = "small"
    val_fraction: float = 0.1
    lr: float = 3e-3
    seed: int = 0
    augment: bool = True
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    threads: int = 2
    progress: bool = True


def train_classifier(crops, labels, arch=TrainConfig.arch, num_epochs=TrainConfig.num_epochs,
                     batch_size_per_class=TrainConfig.batch_size_per_class, val_fraction=TrainConfig.val_fraction,
                     seed=TrainConfig.seed, lr=TrainConfig.lr, weight_decay=1e-4, init_state=None,
                     augment=TrainConfig.augment, progress=True, augment_options=None):
    """Train on uint8 crops (N,S,S,3) with labels (N,). Returns (network with the best epoch's weights,
    history: list of per-epoch dicts, summary dict). The best epoch is the one with the highest validation
    accuracy (lower validation loss breaks ties); without a validation split, the last epoch."""
    seed_everything(seed)
    labels = np.asarray(labels, np.int64)
    if len(np.unique(labels)) < 2:
        raise ValueError("training needs faces of both classes")
    train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    network = build_network(arch)
    if init_state is not None:
        network.load_state_dict(init_state)
    network = network.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    aug = Augment(seed, **(augment_options or {})) if augment else None
    steps_per_epoch = len(balanced_batches(labels[train_idx], batch_size_per_class, np.random.default_rng(0)))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=num_epochs * steps_per_epoch,
                                                   pct_start=0.15)
    history, best, best_state = [], None, None
    bar = tqdm(range(1, num_epochs + 1), desc=f"training {arch}", unit="epoch", disable=not progress)
    for epoch in bar:
        losses = []
        for batch in balanced_batches(labels[train_idx], batch_size_per_class, rng):
            idx = train_idx[batch]
            x = standardise(aug(crops[idx]) if aug is not None else crops[idx])  # as the checkpoint records
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(labels[idx]).float()
            loss = F.binary_cross_entropy_with_logits(network(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if len(val_idx):
            row["val_loss"], m = evaluate_network(network, crops[val_idx], labels[val_idx], arch)
            row["val_accuracy"] = m["accuracy"]
        history.append(row)
        key = (row.get("val_accuracy", 0.0), -row.get("val_loss", -epoch))
        if best is None or key > best[0]:
            best = (key, row)
            best_state = copy.deepcopy(network.state_dict())
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k != "epoch"})
    network.load_state_dict(best_state)
    network = network.to(memory_format=torch.contiguous_format).eval()
    summary = {"best_epoch": best[1]["epoch"], "train_faces": int(len(train_idx)), "val_faces": int(len(val_idx)),
               **{k: v for k, v in best[1].items() if k != "epoch"}}
    return network, history, summary



def load_training_faces(train_examples_path, train_dataset_size_per_class=None, labels_dir=None,
                        metadata_dir=None, images_dir=None, mtcnn_settings=None, mtcnn_model_path=None,
                        cache_dir=DEFAULT_CACHE_DIR, seed=0, progress=True, class_map=None):
    """FaceSets of every training source: each class folder (MTCNN crops, cached) and the labeled faces."""
    sets = [face_crops_from_folder(path, train_dataset_size_per_class, seed, mtcnn_settings=mtcnn_settings,
                                   mtcnn_model_path=mtcnn_model_path, cache_dir=cache_dir, progress=progress)
            for path in train_examples_path]
    if labels_dir is not None:
        from .labels import load_labels

        labels = load_labels(labels_dir, metadata_dir=metadata_dir, images_dir=images_dir, class_map=class_map)
        print(labels.report)
        sets.append(face_crops_from_labels(labels.items, mtcnn_settings["image_size"], source=str(labels_dir),
                                           progress=progress))
    return sets


def sources_table(rows) -> str:
    """Rows of FaceSet summaries (or metrics) as a fixed-width table."""
    keys = list(rows[0])
    return format_table(keys, [[_fmt(r[k]) for k in keys] for r in rows], align="l" * len(keys))


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_training(**kwargs):
    """train_mask_detector.py: crops -> training -> test metrics -> checkpoint (atomic). Takes TrainConfig's
    fields as keywords; returns the classifier."""
    c = TrainConfig(**kwargs)
    check_threads(c.threads)  # set by the script's main()
    if c.batch_size_per_class < 1 or c.num_epochs < 1:
        raise UserError("--batch_size_per_class and --num_epochs must be at least 1")
    check_range("--lr", c.lr, 0, lo_open=True)
    check_range("--val_fraction", c.val_fraction, 0, 1, hi_open=True)
    if c.train_dataset_size_per_class is not None:
        check_range("--train_dataset_size_per_class", c.train_dataset_size_per_class, 1)
    check_writable(c.detector_model_output_path, "--detector_model_output_path")  # before any work
    check_writable_dir(c.cache_dir, "--cache_dir")
    arch, init_state, settings = c.arch, None, dict(DEFAULT_MTCNN_SETTINGS)
    if c.pretrained_detector_model_path is not None:
        pretrained = load_classifier(c.pretrained_detector_model_path)
        arch, init_state, settings = pretrained.arch, pretrained.network.state_dict(), pretrained.mtcnn_settings
    sets = load_training_faces(c.train_examples_path, c.train_dataset_size_per_class, c.labels_dir, c.metadata_dir,
                               c.images_dir, settings, c.mtcnn_model_path, c.cache_dir, c.seed, c.progress, c.class_map)
    print(sources_table([s.summary() for s in sets]))
    for s in sets:
        if s.unreadable:
            print(f"{s.source}: skipped {len(s.unreadable)} unreadable files, e.g. {s.unreadable[0]}")
    faces = concat(sets)
    if len(np.unique(faces.labels)) < 2:
        raise UserError(f"{faces.source}: training needs faces of both classes, found {faces.counts()}")
    network, history, summary = train_classifier(
        faces.crops, faces.labels, arch, c.num_epochs, c.batch_size_per_class, c.val_fraction, c.seed, c.lr,
        init_state=init_state, augment=c.augment, progress=c.progress)
    metadata = {
        "arch": arch, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "training": {"sources": [s.summary() for s in sets], "num_epochs": c.num_epochs,
                     "batch_size_per_class": c.batch_size_per_class, "train_dataset_size_per_class":
                     c.train_dataset_size_per_class, "seed": c.seed, "lr": c.lr, "augment": c.augment,
                     "pretrained": str(c.pretrained_detector_model_path) if c.pretrained_detector_model_path else None,
                     "mtcnn_model": str(c.mtcnn_model_path) if c.mtcnn_model_path else "pretrained", **summary},
        "history": history,
    }
    clf = MaskClassifier(network, arch, settings["image_size"], settings, metadata)
    previous = _previous_classifier(c.detector_model_output_path)
    test_paths = _test_folders(c.test_examples_path, c.train_examples_path, previous)
    tests = _score(clf, test_paths, c.mtcnn_model_path, c.cache_dir, c.progress)
    clf.metadata["test_metrics"] = tests
    kept = keep_previous(c.detector_model_output_path)
    save_classifier(clf, c.detector_model_output_path)
    print(f"best epoch {summary['best_epoch']}/{c.num_epochs}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in summary.items() if isinstance(v, float)))
    if tests:
        print(sources_table([{k: t[k] for k in ("source", "faces", "accuracy", "precision", "recall", "f1",
                                                "roc_auc", "no_face")} for t in tests]))
    old = ({t["source"]: t for t in _score(previous, test_paths, c.mtcnn_model_path, c.cache_dir, c.progress)}
           if previous else {})
    print(replacement_report(c.detector_model_output_path, kept, old, {t["source"]: t for t in tests},
                             CLASSIFIER_FIGURES, "accuracy"))
    return clf


CLASSIFIER_FIGURES = (Figure("accuracy", "accuracy"), Figure("f1", "F1"), Figure("roc_auc", "ROC AUC"))


def _previous_classifier(path):
    """The classifier a run is about to replace, to score it beside the new one (None: none, or not one)."""
    if not Path(path).is_file():
        return None
    try:
        return load_classifier(path)
    except UserError:
        return None


def _test_folders(test_examples_path, train_examples_path, previous) -> list:
    """Where the new model is tested: --test_examples_path, else the test/ folder beside each training folder
    (the write-up's mask_dataset/{train,test}); plus the test sets the replaced model was scored on, when
    they are here, so that the two can be compared."""
    paths = [str(p) for p in test_examples_path]
    if not paths:
        siblings = [Path(p).parent / "test" for p in train_examples_path if Path(p).name == "train"]
        paths = [str(p) for p in siblings if p.is_dir()]
        if paths:
            print(f"testing on {', '.join(paths)} (beside the training folders; --test_examples_path to choose)")
    if previous is not None:
        paths += [t["source"] for t in previous.metadata.get("test_metrics", [])
                  if Path(t.get("source", "")).is_dir() and t["source"] not in paths]
    return paths


def _score(clf, test_paths, mtcnn_model_path, cache_dir, progress) -> list:
    tests = []
    for path in test_paths:
        test = face_crops_from_folder(path, mtcnn_settings=clf.mtcnn_settings, mtcnn_model_path=mtcnn_model_path,
                                      cache_dir=cache_dir, progress=progress)
        tests.append({"source": str(path), **evaluate_classifier(clf, test)})
    return tests
