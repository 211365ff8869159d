"""Fine-tuning MTCNN's stages on labeled frames, stage by stage as MTCNN was trained: each stage learns
from windows mined with the cascade as it stands (so ONet sees the fine-tuned RNet's candidates), then
the whole cascade is evaluated on held-out frames before and after."""
import hashlib
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ..detection_eval import DetectionMetrics, evaluate_detector, format_table, short_side
from ..errors import UserError
from ..images import load_image
from .losses import stage_loss
from .samples import SamplingConfig, SampleSet, class_weights, mine_stage_samples, to_input

STAGE_ORDER = ("pnet", "rnet", "onet")
DEFAULT_STAGES = ("rnet", "onet")
CHECKPOINT_FORMAT = "cctv-mtcnn-finetuned/1"


@dataclass
class FinetuneSettings:
    stages: tuple = DEFAULT_STAGES
    batch_size: int = 8            # labeled frames per optimisation step (all their samples form the batch)
    num_epochs: int = 5
    lr: float = 1e-4
    ohem_keep: float = 0.7
    augment: float = 0.3  # share of crops seen at low resolution, and with other lighting, per step
    frozen: tuple = ("conv1", "prelu1")  # the first layer's edge filters stay: faster, and less forgetting
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def parse_stages(text) -> tuple:
    names = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGE_ORDER]
    if not names or unknown:
        raise UserError(f"--stages: expected a comma-separated list of pnet, rnet, onet, got '{text}'")
    return tuple(s for s in STAGE_ORDER if s in names)


def split_frames(items, val_fraction, seed=0):
    """Deterministic (train, validation) split: frames ordered by a seeded hash of their key, the first
    round(n * val_fraction) go to validation. Adding frames later moves few of the old ones."""
    if not 0 < val_fraction < 1:
        raise UserError(f"--val_fraction must be between 0 and 1, got {val_fraction}")
    if len(items) < 2:
        raise UserError(f"{len(items)} labeled frame(s): fine-tuning needs at least 2 (training and validation)")

    def rank(item):
        return hashlib.sha1(f"{seed}:{item.key}".encode()).hexdigest()

    ordered = sorted(items, key=rank)
    n_val = min(len(items) - 1, max(1, int(round(len(items) * val_fraction))))
    val_keys = {item.key for item in ordered[:n_val]}
    return [i for i in items if i.key not in val_keys], [i for i in items if i.key in val_keys]


def labeled_frames(items):
    """(image, faces, classes) of each labeled frame, read as needed."""
    for item in items:
        yield load_image(item.image_path), item.boxes, item.classes


def frame_batches(samples: SampleSet, batch_size, rng):
    """Index arrays, one per step: all samples of `batch_size` frames, frames in random order."""
    order = np.argsort(samples.frame, kind="stable")
    frames, starts = np.unique(samples.frame[order], return_index=True)
    per_frame = np.split(order, starts[1:])
    shuffled = rng.permutation(len(frames))
    for i in range(0, len(shuffled), batch_size):
        yield np.concatenate([per_frame[j] for j in shuffled[i:i + batch_size]])


def train_stage(net, samples: SampleSet, settings: FinetuneSettings, name="stage", progress=True):
    """Train `net` in place on its samples; returns the mean losses of each epoch (list of dicts)."""
    if len(samples) == 0:
        raise UserError(f"no training samples for {name}: the labeled frames gave no usable windows")
    rng = np.random.default_rng(settings.seed)
    device = next(net.parameters()).device
    for pname, param in net.named_parameters():
        param.requires_grad_(pname.split(".")[0] not in settings.frozen)
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=settings.lr)
    history = []
    net.train()
    bar = tqdm(total=len(samples) * settings.num_epochs, desc=f"training {name}", unit="sample",
               unit_scale=True, disable=not progress, leave=False)
    try:
        for epoch in range(settings.num_epochs):
            sums, steps = np.zeros(4), 0
            for idx in frame_batches(samples, settings.batch_size, rng):
                batch = samples.select(idx)
                x = to_input(batch.crops, rng, settings.augment).to(device)
                labels = torch.from_numpy(batch.label.astype(np.int64)).to(device)
                target = torch.from_numpy(batch.target).to(device)
                lm = None if batch.landmarks is None else torch.from_numpy(batch.landmarks).to(device)
                loss = stage_loss(net(x), labels, target, lm, settings.ohem_keep)
                optimiser.zero_grad(set_to_none=True)
                loss.total.backward()
                optimiser.step()
                sums += (loss.total.item(), loss.face, loss.box, loss.landmarks)
                steps += 1
                bar.update(len(idx))
                bar.set_postfix(epoch=f"{epoch + 1}/{settings.num_epochs}", loss=f"{loss.total.item():.3f}")
            mean = sums / max(steps, 1)
            history.append({"epoch": epoch + 1, "loss": mean[0], "face": mean[1], "box": mean[2], "landmarks": mean[3]})
    finally:
        bar.close()
        net.eval()
        net.requires_grad_(True)
    return history


@torch.no_grad()
def landmark_targets(onet, samples: SampleSet, chunk=1024):
    """The starting ONet's landmark outputs on the samples: what fine-tuning keeps them close to."""
    device = next(onet.parameters()).device
    out = [onet(to_input(samples.crops[i:i + chunk]).to(device))[1].cpu()
           for i in range(0, len(samples), chunk)]
    return torch.cat(out).numpy() if out else np.zeros((0, 10), np.float32)


def is_better(before: DetectionMetrics, after: DetectionMetrics):
    """Better = higher AP@0.5 on the validation frames with no more false detections per frame.
    Returns (bool, reason)."""
    if not after.ap50 > before.ap50:
        return False, f"AP@0.5 did not rise ({100 * before.ap50:.1f} -> {100 * after.ap50:.1f})"
    if after.false_per_frame > before.false_per_frame + 1e-9:
        return False, (f"false detections per frame rose ({before.false_per_frame:.3f} -> "
                       f"{after.false_per_frame:.3f})")
    return True, (f"AP@0.5 {100 * before.ap50:.1f} -> {100 * after.ap50:.1f}, false detections per frame "
                  f"{before.false_per_frame:.3f} -> {after.false_per_frame:.3f}")


@dataclass
class FinetuneResult:
    before: DetectionMetrics
    after: DetectionMetrics
    better: bool
    reason: str
    history: dict          # stage -> per-epoch losses
    sample_counts: dict    # stage -> {"positives", "parts", "negatives"}
    seconds: float
    written: object = None  # the checkpoint path when one was written


def finetune(detector, train_items, val_items, settings: FinetuneSettings, progress=True) -> FinetuneResult:
    """Fine-tune `detector` (an mtcnn.MTCNN; its nets change in place) on train_items, stage by stage,
    evaluating the cascade on val_items before and after."""
    start = time.perf_counter()
    min_size = detector.min_face_size
    before, _ = evaluate_detector(detector.detect, val_items, min_size, desc="evaluating before", progress=progress)
    history, counts = {}, {}
    weights = class_weights([c for item in train_items for c, s in zip(item.classes, short_side(item.boxes))
                             if s >= settings.sampling.min_train_face], settings.sampling)
    for stage in settings.stages:
        samples = mine_stage_samples(labeled_frames(train_items), stage, detector, settings.sampling,
                                     settings.seed, progress, weights, total=len(train_items))
        net = getattr(detector, stage)
        if stage == "onet":
            samples.landmarks = landmark_targets(net, samples)
        counts[stage] = samples.counts
        history[stage] = train_stage(net, samples, settings, stage, progress)
    after, _ = evaluate_detector(detector.detect, val_items, min_size, desc="evaluating after", progress=progress)
    better, reason = is_better(before, after)
    return FinetuneResult(before, after, better, reason, history, counts, time.perf_counter() - start)


def summary(result: FinetuneResult, start_name="pretrained", others=None) -> str:
    """The before/after table (plus `others`: {name: DetectionMetrics} on the same frames), each stage's
    samples and losses, and the verdict."""
    lines = [format_table({start_name: result.before, **(others or {}), "fine-tuned": result.after})]
    for stage, counts in result.sample_counts.items():
        losses = " -> ".join(f"{h['loss']:.3f}" for h in result.history[stage])
        lines.append(f"{stage}: {counts['positives']} positives, {counts['parts']} parts, {counts['negatives']} "
                     f"negatives; loss per epoch {losses}")
    lines.append(f"{'better' if result.better else 'not better'}: {result.reason} ({result.seconds:.0f} s)")
    return "\n".join(lines)


def checkpoint_meta(result: FinetuneResult, settings: FinetuneSettings, detector, data: dict) -> dict:
    """The checkpoint's metadata, plain types only: evaluation before/after, settings, data, losses."""
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stages_trained": list(settings.stages),
        "better": bool(result.better),
        "reason": result.reason,
        "evaluation": {"before": result.before.as_dict(), "after": result.after.as_dict()},
        "settings": {"batch_size": settings.batch_size, "num_epochs": settings.num_epochs, "lr": settings.lr,
                     "ohem_keep": settings.ohem_keep, "seed": settings.seed, "frozen": list(settings.frozen),
                     "augment": settings.augment,
                     "thresholds": [float(t) for t in detector.thresholds],
                     "min_face_size": float(detector.min_face_size), "factor": float(detector.factor)},
        "data": {**data, "samples": result.sample_counts},
        "history": {k: [{kk: float(vv) for kk, vv in e.items()} for e in v] for k, v in result.history.items()},
        "seconds": round(result.seconds, 1),
    }


def checkpoint(detector, meta: dict) -> dict:
    """One dict: every stage's weights under pnet.* / rnet.* / onet.* and plain-type metadata under "meta"
    (loads with torch.load(weights_only=True) and through MTCNN(weights_path=...))."""
    state = {}
    for stage in STAGE_ORDER:
        for key, value in getattr(detector, stage).state_dict().items():
            state[f"{stage}.{key}"] = value.detach().cpu().clone()
    state["meta"] = {"format": CHECKPOINT_FORMAT, **meta}
    return state
