"""The CCTV models' training data and the detector's training: labeled photos of ../shared made to look
like ceiling-camera frames (cctv.cctv_augment), plus empty frames of a room as hard negatives, mined into
MTCNN's per-stage windows (cctv.finetune.samples, cached on disk) and trained stage by stage.

Held-out sets (never trained on): Moxa3K, a fixed 15% by a hash of the file name (`moxa3k_split`);
facemask853, the 80/20-by-photo split with seed 0 of finetune_mtcnn.py / bench_finetune.py.
"""
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cctv_augment import cctvify
from .finetune.samples import SamplingConfig, SampleSet, class_weights
from .finetune.train import FinetuneSettings, landmark_targets, split_frames, train_stage
from .images import load_image

MOXA3K_HELD_OUT = 0.15


def held_out_by_name(name, share=MOXA3K_HELD_OUT) -> bool:
    """A fixed share of files by a hash of the file name: the same files whatever else is in the folder."""
    return int(hashlib.sha1(Path(name).name.encode()).hexdigest()[:8], 16) / 2 ** 32 < share


def moxa3k_split(items):
    """(train, held-out) Moxa3K labeled images."""
    return ([i for i in items if not held_out_by_name(i.image_path)],
            [i for i in items if held_out_by_name(i.image_path)])


def facemask853_split(items):
    """(train, test) facemask853 photos: the 80/20 split (seed 0) the earlier benchmarks held out."""
    return split_frames(items, 0.2, seed=0)


def load_sources(shared):
    """Labeled items of the training sources in ../shared: {"moxa3k": (train, held_out),
    "facemask853": (train, test)}."""
    from .labels import load_labels

    data = Path(shared) / "data"
    moxa = load_labels(data / "moxa3k_train" / "labels").items
    mask853 = load_labels(data / "suite_exports" / "facemask853", images_dir=data / "facemask853" / "images").items
    return {"moxa3k": moxa3k_split(moxa), "facemask853": facemask853_split(mask853)}


def room_backgrounds(video_path, count, seed=0, sample_every=25):
    """Frames without faces: the median of a fixed camera's frames (people walk through, the room stays),
    cut into `count` random crops at random scales. Hard negatives for a detector that will watch rooms."""
    from .video import read_frames

    frames = np.stack(list(read_frames(video_path, step=sample_every)))
    median = np.median(frames, axis=0).astype(np.uint8)
    rng = np.random.default_rng(seed)
    h, w = median.shape[:2]
    out = []
    for _ in range(count):
        ch, cw = int(h * rng.uniform(0.4, 1.0)), int(w * rng.uniform(0.4, 1.0))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(np.ascontiguousarray(median[y:y + ch, x:x + cw]))
    return out


@dataclass
class FrameSource:
    """What the stages are mined from: labeled items, each seen `versions` times, every version a CCTV
    version (cctvify) with probability `cctv_share`, else the photo as is (the detector must keep working
    on photos); and background frames (no faces), each seen as a CCTV version."""
    items: list
    versions: int = 1
    cctv_share: float = 0.6
    backgrounds: list = field(default_factory=list)
    seed: int = 0

    def __len__(self):
        return len(self.items) * self.versions + len(self.backgrounds)

    def class_weights(self, cfg: SamplingConfig) -> dict:
        """Each class's positive/part quota multiplier over the labeled faces (finetune.samples.class_weights)."""
        return class_weights([c for item in self.items for c in item.classes], cfg)

    def __iter__(self):
        for n, item in enumerate(self.items):
            image = load_image(item.image_path)
            boxes = np.asarray(item.boxes, np.float32).reshape(-1, 4)
            for version in range(self.versions):
                rng = np.random.default_rng([self.seed, n, version])
                if rng.random() < self.cctv_share:
                    yield (*cctvify(image, boxes, rng), list(item.classes))
                else:
                    yield image, boxes, list(item.classes)
        for n, bg in enumerate(self.backgrounds):
            rng = np.random.default_rng([self.seed, 10 ** 6 + n])
            cimg, _ = cctvify(bg, np.zeros((0, 4), np.float32), rng)
            yield cimg, np.zeros((0, 4), np.float32), []


def save_samples(samples: SampleSet, path):
    from .atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, size=samples.size, crops=samples.crops, label=samples.label, target=samples.target,
                 frame=samples.frame, **samples.counts)


def load_samples(path) -> SampleSet:
    with np.load(path) as z:
        s = SampleSet(int(z["size"]), z["crops"], z["label"], z["target"], z["frame"])
        s.counts = {k: int(z[k]) for k in ("positives", "parts", "negatives")}
    return s


def mine_all_stages(frames, detector, stages, cfg, weights, seed=0, total=None, progress=True):
    """MTCNN's windows for every stage from one pass of the cascade over the frames (3x cheaper than a
    pass per stage; the stages' candidates are those of the starting cascade). {stage: SampleSet}."""
    from tqdm import tqdm

    from .finetune.samples import STAGE_INPUT, STAGE_SIZE, crop_windows, frame_windows, _valid

    rngs = {s: np.random.default_rng([seed, i]) for i, s in enumerate(stages)}
    parts = {s: ([], [], [], []) for s in stages}
    for i, (image, faces, classes) in enumerate(tqdm(frames, desc="mining windows", unit="frame", total=total,
                                                      disable=not progress)):
        faces = np.asarray(faces, np.float64).reshape(-1, 4)
        face_weight = [(weights or {}).get(c, 1.0) for c in classes]
        candidates = detector.detect_stages(image)
        for s in stages:
            windows, label, target = frame_windows(rngs[s], image.shape, faces, candidates[STAGE_INPUT[s]], s, cfg,
                                                   face_weight)
            ok = _valid(windows, image.shape)
            crops, labels, targets, frame_ids = parts[s]
            crops.append(crop_windows(image, windows[ok], STAGE_SIZE[s]))
            labels.append(label[ok])
            targets.append(target[ok])
            frame_ids.append(np.full(int(ok.sum()), i, np.int32))
    out = {}
    for s, (crops, labels, targets, frame_ids) in parts.items():
        samples = SampleSet(STAGE_SIZE[s], np.concatenate(crops), np.concatenate(labels), np.concatenate(targets),
                            np.concatenate(frame_ids))
        samples.counts = {"positives": int((samples.label == 1).sum()), "parts": int((samples.label == -1).sum()),
                          "negatives": int((samples.label == 0).sum())}
        out[s] = samples
    return out


def cap_negatives(samples: SampleSet, max_negatives, seed=0) -> SampleSet:
    """Every positive and part window, and at most `max_negatives` negatives (a random choice)."""
    neg = np.flatnonzero(samples.label == 0)
    if len(neg) <= max_negatives:
        return samples
    keep = np.sort(np.concatenate([np.flatnonzero(samples.label != 0),
                                   np.random.default_rng(seed).choice(neg, max_negatives, replace=False)]))
    out = samples.select(keep)
    out.counts = {**samples.counts, "negatives": int(max_negatives)}
    return out


def train_detector(detector, source: FrameSource, settings: FinetuneSettings, cache_dir, epochs=None, lr=None,
                   max_negatives=None, progress=True, log=print):
    """Train the cascade's stages on windows mined from `source` in one pass of the starting cascade
    (mine_all_stages), cached per stage in cache_dir (delete it when the data or settings change).
    epochs, lr, max_negatives: per-stage overrides. Returns {stage: (counts, history)}."""
    cache_dir = Path(cache_dir)
    weights = source.class_weights(settings.sampling)
    cached = {s: cache_dir / f"{s}.npz" for s in settings.stages}
    if not all(p.is_file() for p in cached.values()):
        mined = mine_all_stages(iter(source), detector, settings.stages, settings.sampling, weights, settings.seed,
                                len(source), progress)
        for s, samples in mined.items():
            save_samples(samples, cached[s])
        del mined
    out = {}
    for stage in settings.stages:
        samples = load_samples(cached[stage])
        log(f"{stage}: {len(samples)} windows {samples.counts} ({cached[stage]})")
        if max_negatives and stage in max_negatives:
            samples = cap_negatives(samples, max_negatives[stage], settings.seed)
        net = getattr(detector, stage)
        if stage == "onet":
            samples.landmarks = landmark_targets(net, samples)
        stage_settings = FinetuneSettings(**{**settings.__dict__, "num_epochs": (epochs or {}).get(stage, settings.num_epochs),
                                             "lr": (lr or {}).get(stage, settings.lr)})
        history = train_stage(net, samples, stage_settings, stage, progress)
        log(f"{stage}: loss per epoch " + " -> ".join(f"{h['loss']:.3f}" for h in history))
        out[stage] = (samples.counts, history)
        del samples
    return out


def cctv_sampling() -> SamplingConfig:
    """Windows per face and frame for CCTV training: faces from 8 px give positives (the detector is asked
    for 10 px faces), more of the cascade's own false candidates (the hard negatives)."""
    return SamplingConfig(min_train_face=8.0, cascade_negatives=16)


def concat_samples(parts) -> SampleSet:
    """One SampleSet of several, frame ids kept apart."""
    offset, frames = 0, []
    for p in parts:
        frames.append(p.frame + offset)
        offset += int(p.frame.max()) + 1 if len(p.frame) else 0
    out = SampleSet(parts[0].size, np.concatenate([p.crops for p in parts]), np.concatenate([p.label for p in parts]),
                    np.concatenate([p.target for p in parts]), np.concatenate(frames))
    out.counts = {k: sum(p.counts.get(k, 0) for p in parts) for k in ("positives", "parts", "negatives")}
    return out


def refine_with_trained_cascade(detector, source: FrameSource, stage, settings: FinetuneSettings, cache_dir,
                                epochs=1, lr=1e-4, max_negatives=None, tag="second_pass", progress=True, log=print):
    """Second pass for a stage: one pass of mining saw the *starting* cascade's candidates, but the
    trained PNet/RNet pass others (many more small ones) that the stage never learned to reject. Mine the
    trained cascade's candidates for `stage` on `source` (its false ones are the hard negatives), add them
    to the stage's first-pass windows, and train the stage on the lot for `epochs` more. Without the
    first pass's windows in cache_dir (a shipped model refined later), the faces' own windows (positives,
    parts, random negatives) are mined beside the candidates, so the stage keeps seeing faces."""
    from dataclasses import replace

    from .finetune.samples import mine_stage_samples

    cache_dir = Path(cache_dir)
    first_pass = cache_dir / f"{stage}.npz"
    with_first_pass = first_pass.is_file()
    cached = cache_dir / f"{stage}_{tag}.npz"
    if cached.is_file():
        mined = load_samples(cached)
    else:
        cfg = replace(settings.sampling, cascade_negatives=2 * settings.sampling.cascade_negatives)
        if with_first_pass:
            cfg = replace(cfg, positives_per_face=0, parts_per_face=0, random_negatives=0, near_face_negatives=0)
        mined = mine_stage_samples(iter(source), stage, detector, cfg, settings.seed + 1, progress,
                                   weights=source.class_weights(settings.sampling), total=len(source))
        save_samples(mined, cached)
    log(f"{stage} {tag}: {mined.counts} from the trained cascade")
    parts = [mined]
    if with_first_pass:  # loaded only now: ONet's first-pass windows take hundreds of MB
        first = load_samples(first_pass)
        parts.insert(0, cap_negatives(first, max_negatives, settings.seed) if max_negatives else first)
    samples = concat_samples(parts)
    net = getattr(detector, stage)
    if stage == "onet":
        samples.landmarks = landmark_targets(net, samples)
    history = train_stage(net, samples, FinetuneSettings(**{**settings.__dict__, "num_epochs": epochs, "lr": lr}),
                          f"{stage} ({tag})", progress)
    log(f"{stage} {tag}: loss per epoch " + " -> ".join(f"{h['loss']:.3f}" for h in history))
    return samples.counts, history
