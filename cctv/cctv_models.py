"""The CCTV models: the settings of the shipped CCTV detector (models/cctv_mtcnn.pt) and classifier
(models/cctv_classifier.pt), and how the classifier is trained (benchmarks/train_cctv_models.py)."""
from pathlib import Path

SHIPPED_MTCNN = "models/cctv_mtcnn.pt"
SHIPPED_CLASSIFIER = "models/cctv_classifier.pt"

# Faces of 10 px and up: the pyramid's first levels enlarge the frame (mtcnn.cascade.pyramid_level).
CCTV_MIN_FACE_SIZE = 10
CCTV_THRESHOLDS = (0.6, 0.7, 0.7)  # MTCNN's own defaults (README: why not the photo sweep's 0.7, 0.8, 0.8)

# The CCTV classifier sees 64 px crops: faces of 10-40 px carry no more detail, and it trains 6x faster.
CCTV_CROP_SIZE = 64
CCTV_MIN_TRAIN_FACE = 10


def cctv_mtcnn_settings(margin=0):
    """The MTCNN settings the CCTV classifier's checkpoint carries, which the main job then uses (`margin`:
    crop_faces' margin, px of the crop)."""
    return {"image_size": CCTV_CROP_SIZE, "margin": margin, "min_face_size": CCTV_MIN_FACE_SIZE,
            "thresholds": list(CCTV_THRESHOLDS), "factor": 0.709, "weights": Path(SHIPPED_MTCNN).name}


def labeled_face_crops(items, versions=2, cctv_share=0.7, seed=0, size=CCTV_CROP_SIZE, min_face=CCTV_MIN_TRAIN_FACE,
                       source="", progress=True, painted=0.0, margin=0):
    """Crops of the labeled faces (>= min_face px) as the main job cuts them (mtcnn.crop_faces), from
    `versions` versions of each photo, each a CCTV version (cctvify) with probability cctv_share: a FaceSet.
    painted > 0: instead one version of each photo in which that share of the unprotected faces wear a
    painted mask (cctv.mask_paint), painted before the CCTV steps; only those faces, labeled protected.
    margin: crop_faces' margin."""
    import numpy as np
    from tqdm import tqdm

    from mtcnn import crop_faces

    from .cctv_augment import cctvify
    from .classifier import CLASS_NAMES
    from .face_dataset import faceset_from_batches
    from .images import load_image
    from .mask_paint import paint_masks

    crops, labels = [], []
    for n, item in enumerate(tqdm(items, desc=f"faces of {source}", unit="img", disable=not progress)):
        boxes = np.asarray(item.boxes, np.float32).reshape(-1, 4)
        big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_face
        classes = np.array([CLASS_NAMES.index(c) for c, b in zip(item.classes, big) if b], np.int64)
        boxes = boxes[big]
        if not len(boxes) or (painted and classes.all()):
            continue
        image = load_image(item.image_path)
        for version in range(1 if painted else versions):
            rng = np.random.default_rng([seed, n, version] + ([1] if painted else []))
            img, keep, kept_classes = image, slice(None), classes
            if painted:
                img, keep = paint_masks(image, boxes, classes == 1, rng, painted)
                kept_classes = np.ones(int(keep.sum()), np.int64)
            if rng.random() < cctv_share:
                img, moved = cctvify(img, boxes, rng, face_range=(10.0, 40.0))
            else:
                moved = boxes
            crops.append(crop_faces(img, moved[keep], size, margin))
            labels.append(kept_classes)
    return faceset_from_batches(crops, labels, size, source=source)


def painted_crop_faces(faces, share=0.5, cctv_share=0.7, seed=0, size=CCTV_CROP_SIZE, source="", margin=0):
    """labeled_face_crops(painted=share) for a set of face crops cut with crop_faces' `margin` (the face's
    box is the crop less the margin): a share of the unprotected crops with a painted mask, then the CCTV
    steps, labeled protected."""
    import numpy as np

    from mtcnn import crop_faces

    from .cctv_augment import cctvify
    from .face_dataset import faceset_from_batches
    from .mask_paint import paint_masks

    out = []
    for n in np.flatnonzero(faces.labels == 0):
        rng = np.random.default_rng([seed, int(n), 1])
        crop, side = faces.crops[n], faces.crops.shape[1]
        box = np.array([[margin / 2, margin / 2, side - margin / 2, side - margin / 2]], np.float32)
        crop, painted = paint_masks(crop, box, [False], rng, share)
        if not painted[0]:
            continue
        if rng.random() < cctv_share:
            crop, box = cctvify(crop, box, rng, face_range=(10.0, 40.0))
        out.append(crop_faces(crop, box, size, margin))
    return faceset_from_batches(out, [np.ones(len(c), np.int64) for c in out], size, source=source)


def classifier_sources(shared, work_dir, versions=2, painted=0.0, margin=0, progress=True):
    """Training and test FaceSets per source: {name: (train, test)}. mask_classification: the write-up's
    split (500 per class train; MTCNN crops, as train_mask_detector.py makes them); facemask853: the 80/20
    split by photo of prepare_mask_dataset.py (seed 0); Moxa3K: the fixed 15% held out by file name.
    painted > 0: each training set also gets that share of its unprotected faces with a painted mask.
    margin: crop_faces' margin of every crop (cached apart from the other margins')."""
    from pathlib import Path

    from .cctv_training import moxa3k_split
    from .face_dataset import concat, face_crops_from_folder, split_by_image
    from .labels import load_labels
    from .mask_dataset_prep import run_prepare

    data, work_dir = Path(shared) / "data", Path(work_dir)
    settings, tag = cctv_mtcnn_settings(margin), f"_m{margin}" if margin else ""
    folder = work_dir / "mask_classification"
    if not (folder / "test").is_dir():
        run_prepare(source_path=data / "mask_classification", output_path=folder, overwrite=True, progress=progress)
    out = {"mask_classification": tuple(face_crops_from_folder(folder / split, mtcnn_settings=settings, progress=progress)
                                        for split in ("train", "test"))}
    paint = {"mask_classification": lambda: painted_crop_faces(out["mask_classification"][0], painted, margin=margin,
                                                               source="mask_classification train painted")}
    mask853 = load_labels(data / "suite_exports" / "facemask853", images_dir=data / "facemask853" / "images").items
    moxa = load_labels(data / "moxa3k_train" / "labels").items
    for name, (train, test) in {"facemask853": split_by_image(mask853, 0.2, 0),
                                "moxa3k": moxa3k_split(moxa)}.items():
        out[name] = tuple(_cached_faces(work_dir / f"{name}_{split}{tag}_faces.npz",
                                        lambda: labeled_face_crops(part, n, share, source=f"{name} {split}",
                                                                   progress=progress, margin=margin))
                          for split, part, n, share in (("train", train, versions, 0.7), ("test", test, 1, 0.0)))
        paint[name] = (lambda name=name, train=train: labeled_face_crops(
            train, cctv_share=0.7, source=f"{name} train painted", progress=progress, painted=painted, margin=margin))
    if painted:
        for name, make in paint.items():
            extra = _cached_faces(work_dir / f"{name}_train_painted{round(100 * painted)}{tag}_faces.npz", make)
            out[name] = (concat([out[name][0], extra]), out[name][1])
    return out


def _cached_faces(path, make):
    """A FaceSet's crops and labels, made once and kept in an .npz (delete it after changing the recipe)."""
    import numpy as np

    from .atomic import atomic_path
    from .face_dataset import FaceSet

    if path.is_file():
        with np.load(path) as z:
            return FaceSet(z["crops"], z["labels"], [], [], [], str(z["source"]))
    faces = make()
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, crops=faces.crops, labels=faces.labels, source=faces.source)
    return faces


def train_cctv_classifier(train_sets, num_epochs=12, seed=0, progress=True, augment_options=None):
    """A SmallNet on 64 px crops of the given FaceSets, with the crop augmentation (mask_training.Augment;
    augment_options: its settings). Returns (network, summary)."""
    from .face_dataset import concat
    from .mask_training import train_classifier

    faces = concat(train_sets)
    network, history, summary = train_classifier(faces.crops, faces.labels, "small", num_epochs, 32, 0.1, seed,
                                                 augment=True, progress=progress, augment_options=augment_options)
    return network, {**summary, "history": history, "faces": faces.counts()}


def build_classifier(opt, sources_unused, log=print):
    """Train the shipped CCTV classifier on all three sources, and (for the cross-source figure) one
    without mask_classification, tested on its test split. Writes opt.detector_model_output_path."""
    import time

    from .classifier import MaskClassifier, save_classifier
    from .mask_metrics import evaluate_classifier

    start = time.perf_counter()
    sets = classifier_sources(opt.shared, opt.cache_dir, painted=opt.painted_share, margin=opt.crop_margin)
    for name, (train, test) in sets.items():
        log(f"{name}: train {train.counts()}, test {test.counts()}")
    tests, options = [], {"p_cast": opt.colour_cast}
    network, summary = train_cctv_classifier([s[0] for s in sets.values()], opt.classifier_epochs,
                                             augment_options=options)
    clf = MaskClassifier(network, "small", CCTV_CROP_SIZE, cctv_mtcnn_settings(opt.crop_margin))
    for name, (_, test) in sets.items():
        tests.append({"source": name, "trained_on": "all", **evaluate_classifier(clf, test)})
    held = "mask_classification"
    cross_net, _ = train_cctv_classifier([s[0] for n, s in sets.items() if n != held], opt.classifier_epochs,
                                         augment_options=options)
    cross = MaskClassifier(cross_net, "small", CCTV_CROP_SIZE, cctv_mtcnn_settings(opt.crop_margin))
    tests.append({"source": held, "trained_on": f"all but {held}", **evaluate_classifier(cross, sets[held][1])})
    for t in tests:
        log(f"{t['source']:<20} trained on {t['trained_on']:<28} faces {t['faces']:>5}  accuracy {t['accuracy']:.3f}")
    clf.metadata = {"arch": "small", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "training": {"recipe": "benchmarks/train_cctv_models.py", "sources": list(sets),
                                 "painted_share": opt.painted_share, "crop_augment": options,
                                 **{k: v for k, v in summary.items() if k != "history"}},
                    "history": summary["history"], "test_metrics": tests,
                    "seconds": round(time.perf_counter() - start, 1)}
    from .model_safety import keep_previous

    kept = keep_previous(opt.detector_model_output_path)
    save_classifier(clf, opt.detector_model_output_path)
    log(f"wrote {opt.detector_model_output_path}" + (f"; the model it replaced is kept as {kept.backup}" if kept else ""))


def mtcnn_checkpoint_settings(path) -> dict:
    """min_face_size and thresholds an MTCNN checkpoint records under meta.settings ({} if none)."""
    import torch

    from .errors import UserError

    if not Path(path).is_file():
        raise UserError(f"{path}: no such MTCNN checkpoint")
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"{path}: not a readable MTCNN checkpoint ({e.__class__.__name__})") from None
    settings = meta.get("settings", {}) if isinstance(meta, dict) else {}
    return {k: settings[k] for k in ("min_face_size", "thresholds") if k in settings}
