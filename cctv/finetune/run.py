"""finetune_mtcnn.py's work: read labels, split, fine-tune, evaluate, write the checkpoint when better."""
from dataclasses import dataclass
from pathlib import Path

from ..atomic import check_writable, save_torch
from ..cli import check_device, parse_thresholds
from ..errors import UserError, user_errors
from ..model_safety import Figure, keep_previous, replacement_report, shipped_name
from .train import FinetuneSettings, checkpoint, checkpoint_meta, finetune, parse_stages, split_frames, summary

DEFAULT_THRESHOLDS = (0.6, 0.7, 0.7)


def _check_positive(name, value):
    if value <= 0:
        raise UserError(f"--{name} must be positive, got {value}")


def load_labeled_frames(labels_dir, metadata_dir=None, images_dir=None, class_map=None):
    """The labeled frames whose images exist, with the load report printed."""
    from ..labels import load_labels, parse_class_map

    labels = load_labels(labels_dir, metadata_dir, images_dir, parse_class_map(class_map) if class_map else None)
    print(labels.report)
    items = [item for item in labels.items if Path(item.image_path).is_file()]
    if not items:
        raise UserError(f"{labels_dir}: none of the {len(labels.items)} labeled images were found"
                        + (f" in {images_dir}" if images_dir else ""))
    return items


@dataclass
class FinetuneConfig:
    """`finetune_mtcnn.py`'s settings (its flags' names): the one place their defaults are written."""
    labels_dir: str
    metadata_dir: str | None = None
    images_dir: str | None = None
    mtcnn_model_output_path: str = "models/finetuned_mtcnn.pt"
    pretrained_mtcnn_model: str | None = None  # None: the pretrained weights
    batch_size: int = FinetuneSettings.batch_size
    num_epochs: int = FinetuneSettings.num_epochs
    stages: str = ",".join(FinetuneSettings.stages)
    lr: float = FinetuneSettings.lr
    val_fraction: float = 0.2
    seed: int = FinetuneSettings.seed
    thresholds: tuple = DEFAULT_THRESHOLDS
    min_face_size: float = 20
    class_map: str | None = None
    device: str = "cpu"
    force: bool = False
    progress: bool = True


def run_finetune(**kwargs):
    """Fine-tune MTCNN on labeled frames (FinetuneConfig's fields as keywords); returns the FinetuneResult (with
    .written: the path or None)."""
    from mtcnn import MTCNN, MTCNNWeightsError

    c = FinetuneConfig(**kwargs)
    _check_positive("batch_size", c.batch_size)
    _check_positive("num_epochs", c.num_epochs)
    _check_positive("lr", c.lr)
    _check_positive("min_face_size", c.min_face_size)
    thresholds = parse_thresholds(c.thresholds)
    settings = FinetuneSettings(stages=parse_stages(c.stages), batch_size=int(c.batch_size),
                                num_epochs=int(c.num_epochs), lr=float(c.lr), seed=int(c.seed))
    if not 0 < c.val_fraction < 1:
        raise UserError(f"--val_fraction must be between 0 and 1, got {c.val_fraction}")
    check_device(c.device)
    check_writable(c.mtcnn_model_output_path, "--mtcnn_model_output_path")  # before any work
    items = load_labeled_frames(c.labels_dir, c.metadata_dir, c.images_dir, c.class_map)
    train_items, val_items = split_frames(items, c.val_fraction, c.seed)
    if not any(len(item.boxes) for item in train_items):
        raise UserError(f"{c.labels_dir}: no labeled faces in the {len(train_items)} training frames "
                        f"({sum(len(i.boxes) for i in val_items)} in the held-out ones): fine-tuning on "
                        f"background only would teach MTCNN that there are no faces")
    print(f"{len(items)} labeled frames: {len(train_items)} for training, {len(val_items)} for validation "
          f"(seed {c.seed}); fine-tuning {', '.join(settings.stages)}")

    with user_errors(MTCNNWeightsError):
        detector = MTCNN(min_face_size=c.min_face_size, thresholds=thresholds, keep_all=True,
                         weights_path=c.pretrained_mtcnn_model, device=c.device)
    result = finetune(detector, train_items, val_items, settings, c.progress)

    previous = _previous_evaluation(c.mtcnn_model_output_path, c.pretrained_mtcnn_model, detector, val_items,
                                    c.progress)
    print(summary(result, "pretrained" if c.pretrained_mtcnn_model is None else "starting",
                  {f"{c.mtcnn_model_output_path} (now)": previous} if previous else None))

    if result.better or c.force:
        meta = checkpoint_meta(result, settings, detector, {
            "labels": str(c.labels_dir), "train_frames": len(train_items), "val_frames": len(val_items),
            "val_fraction": float(c.val_fraction), "started_from": str(c.pretrained_mtcnn_model or "pretrained")})
        kept = keep_previous(c.mtcnn_model_output_path)
        save_torch(checkpoint(detector, meta), c.mtcnn_model_output_path)
        result.written = Path(c.mtcnn_model_output_path)
        name = "held-out frames"
        print(replacement_report(c.mtcnn_model_output_path, kept, {name: previous.as_dict()} if previous else {},
                                 {name: result.after.as_dict()}, MTCNN_FIGURES, "AP@0.5")
              + ("" if result.better else "\n(written because of --force)"))
    else:
        print(f"not written: {kept_message(c.mtcnn_model_output_path)} (--force writes anyway)")
    return result


MTCNN_FIGURES = (Figure("ap50", "AP@0.5", percent=True), Figure("recall", "recall", percent=True),
                 Figure("false_per_frame", "false/frame", higher_is_better=False))


def kept_message(path) -> str:
    """What stays at `path` when nothing is written: the shipped model, the user's own, or nothing."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist (the main job uses the pretrained MTCNN)"
    shipped = shipped_name(path)
    if shipped:
        return f"{path} still holds the shipped model ({shipped}), not one of yours"
    return f"{path} still holds your previous model"


def _previous_evaluation(path, started_from, detector, val_items, progress):
    """The model at `path` (about to be replaced) scored on the same held-out frames; None when there is none,
    it is not an MTCNN checkpoint, or it is the starting model (already in the table)."""
    from mtcnn import MTCNN

    from ..detection_eval import evaluate_detector

    path = Path(path)
    if not path.is_file() or (started_from and path.resolve() == Path(started_from).resolve()):
        return None
    try:
        previous = MTCNN(min_face_size=detector.min_face_size, thresholds=list(detector.thresholds), keep_all=True,
                         factor=detector.factor, weights_path=str(path), device=detector.device)
    except Exception:  # not an MTCNN checkpoint: it is still kept aside before the write
        return None
    metrics, _ = evaluate_detector(previous.detect, val_items, detector.min_face_size,
                                   desc=f"evaluating {path.name}", progress=progress)
    return metrics
