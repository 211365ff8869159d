"""A candidate version: MTCNN and the classifier fine-tuned from the current models on every labeled batch,
then both candidates and the current models scored on the same fixed evaluation set."""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError, user_errors


@dataclass
class TrainSettings:
    mtcnn_epochs: int = 3
    mtcnn_stages: str = "rnet,onet"
    mtcnn_batch_size: int = 8
    mtcnn_lr: float = 1e-4
    classifier_epochs: int = 5
    classifier_batch_per_class: int = 16
    classifier_lr: float = 1e-3
    classifier_examples_path: tuple = ()  # class folders mixed in (replay, and both classes present)
    classifier_examples_per_class: int = 100
    crop_min_face_size: float = 12
    holdout_fraction: float = 0.25
    max_train_frames: int = 0  # 0: all
    seed: int = 0
    progress: bool = True


def load_batch_labels(batch, class_map=None):
    """The labeled frames of one batch (any format cctv.labels reads; images may be in the batch's frames/)."""
    from ..labels import load_labels

    labels = load_labels(batch.labels_dir, images_dir=batch.frames_dir, class_map=class_map)
    items = [item for item in labels.items if Path(item.image_path).is_file()]
    return items, str(labels.report)


def split_batch(items, holdout_fraction, seed=0):
    """(train, held out): a deterministic hash split per batch, so the evaluation set never changes for
    frames already seen; a one-frame batch trains only."""
    from ..finetune import split_frames

    if len(items) < 2:
        return list(items), []
    return split_frames(items, holdout_fraction, seed)


def _face_crops(items, image_size, min_size, progress):
    from ..face_dataset import face_crops_from_labels

    return face_crops_from_labels(items, image_size, min_face_size=min_size, progress=progress)


def train_mtcnn(base_mtcnn, mtcnn_settings, train_items, out_path, s: TrainSettings):
    """Fine-tune from `base_mtcnn` (None: pretrained) and write `out_path`; returns a note for the history."""
    from mtcnn import MTCNN, MTCNNWeightsError

    from ..atomic import save_torch
    from ..finetune import FinetuneSettings, finetune
    from ..finetune.train import checkpoint, checkpoint_meta, parse_stages

    with user_errors(MTCNNWeightsError):
        mtcnn = MTCNN(**mtcnn_settings, keep_all=True, select_largest=False, weights_path=base_mtcnn)
    settings = FinetuneSettings(stages=parse_stages(s.mtcnn_stages), batch_size=s.mtcnn_batch_size,
                                num_epochs=s.mtcnn_epochs, lr=s.mtcnn_lr, seed=s.seed)
    faces = sum(len(item.boxes) for item in train_items)
    note = "fine-tuned"
    if faces == 0:
        note = "no labeled faces to train on: weights unchanged"
    else:
        try:
            result = finetune(mtcnn, train_items, [], settings, s.progress)  # evaluation comes later, on all
            meta = checkpoint_meta(result, settings, mtcnn, {"train_frames": len(train_items),
                                                             "started_from": str(base_mtcnn or "pretrained")})
        except UserError as e:  # e.g. no usable training windows
            note = f"not fine-tuned ({e}): weights unchanged"
    if note != "fine-tuned":  # the candidate still gets its own checkpoint: the same weights as its base
        meta = {"note": note, "started_from": str(base_mtcnn or "pretrained")}
    save_torch(checkpoint(mtcnn, meta), out_path)
    return note


def train_classifier_candidate(base_classifier, train_items, out_path, s: TrainSettings):
    """Fine-tune the classifier from `base_classifier` on crops of the labeled faces (plus replay examples);
    with faces of one class only, the current classifier is kept as the candidate's."""
    from ..classifier import MaskClassifier, load_classifier, save_classifier
    from ..face_dataset import concat, face_crops_from_folder
    from ..mask_training import train_classifier

    base = load_classifier(base_classifier)
    size = int(base.mtcnn_settings.get("image_size", 160))
    sets = [_face_crops(train_items, size, s.crop_min_face_size, s.progress)]
    for path in s.classifier_examples_path:
        sets.append(face_crops_from_folder(path, s.classifier_examples_per_class, s.seed,
                                           mtcnn_settings=base.mtcnn_settings, progress=s.progress))
    faces = concat(sets)
    counts = faces.counts()
    if len(np.unique(faces.labels)) < 2:
        note = f"faces of one class only ({counts}): classifier unchanged"
        clf = base
    else:
        network, history, summary = train_classifier(
            faces.crops, faces.labels, base.arch, s.classifier_epochs, s.classifier_batch_per_class,
            val_fraction=0.0, seed=s.seed, lr=s.classifier_lr, init_state=base.network.state_dict(),
            progress=s.progress)
        clf = MaskClassifier(network, base.arch, base.input_size, base.mtcnn_settings,
                             {**base.metadata, "active_learning": {"faces": counts, **summary}})
        note = f"fine-tuned on {counts}"
    save_classifier(clf, out_path)
    return note


def evaluate_models(classifier_path, mtcnn_path, eval_items, s: TrainSettings) -> dict:
    """Detection (AP@0.5, recall per class, false detections per frame) of the MTCNN and accuracy of the
    classifier on crops of the labeled faces, on `eval_items`."""
    from ..detection_eval import evaluate_detector
    from ..mask_metrics import binary_metrics
    from ..pipeline import MaskPipeline

    pipeline = MaskPipeline.load(classifier_path, mtcnn_path)
    detection, _ = evaluate_detector(pipeline.detector.detect, eval_items, pipeline.detector.min_face_size,
                                     desc="evaluating detection", progress=s.progress)
    faces = _face_crops(eval_items, pipeline.image_size, s.crop_min_face_size, False)
    if len(faces):
        cls = binary_metrics(faces.labels, pipeline.classifier.predict(faces.crops))
        accuracy = cls["accuracy"]
    else:
        accuracy = float("nan")
    return {"detection": _plain(detection.as_dict()), "classifier": {"accuracy": accuracy, "faces": len(faces),
                                                                     **faces.counts()}}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def not_worse(current, candidate, tolerance=0.0) -> bool:
    """None (nothing to score) counts as no change."""
    if current is None or candidate is None:
        return current is None or candidate is not None
    return candidate >= current - tolerance - 1e-12


def decide(current: dict, candidate: dict, tolerance=0.0):
    """(promote?, reason): promote only if neither detection AP nor classifier accuracy gets worse."""
    ap_now, ap_new = current["detection"]["ap50"], candidate["detection"]["ap50"]
    acc_now, acc_new = _plain(current["classifier"]["accuracy"]), _plain(candidate["classifier"]["accuracy"])
    checks = {"AP@0.5": (ap_now, ap_new), "classifier accuracy": (acc_now, acc_new)}
    text = ", ".join(f"{k} {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in checks.items())
    worse = [k for k, (a, b) in checks.items() if not not_worse(a, b, tolerance)]
    if worse:
        return False, f"{' and '.join(worse)} got worse ({text})"
    return True, f"not worse ({text})"


def _fmt(x):
    return "-" if x is None else f"{100 * x:.1f}"
