"""Face-detector quality on labeled frames: AP@0.5, recall and precision at the detector's own thresholds,
false detections per frame, and recall per class (protected / unprotected).

Labeled faces smaller than `min_size` (short side, px) are "ignored", as COCO does for crowd regions: the
detector is not asked to find them (they count neither as hits nor misses) and a detection on one is not
a false detection. That lets a detector run at `min_face_size=20` be judged on the faces it is meant to find.
"""
from dataclasses import asdict, dataclass, field

import numpy as np

TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


def box_iou(a, b) -> np.ndarray:
    """Pairwise IoU of boxes (N,4) and (M,4), x1,y1,x2,y2 in pixels -> (N,M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def short_side(boxes) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


@dataclass
class FrameMatch:
    """One frame's outcome: per detection TRUE_POSITIVE / FALSE_POSITIVE / IGNORED, per labeled face
    whether a detection found it and whether it is ignored (too small)."""
    outcome: np.ndarray
    gt_found: np.ndarray
    gt_ignored: np.ndarray


def match_frame(det_boxes, det_scores, gt_boxes, iou_threshold=0.5, min_size=0.0, max_size=np.inf) -> FrameMatch:
    """Greedy matching in descending score order (COCO style): a detection takes the unmatched counted face
    it overlaps most (IoU >= threshold); failing that, one overlapping an ignored face makes it IGNORED;
    else (including a second detection of an already found face) it is a FALSE_POSITIVE. Faces of max_size
    px or more are ignored too (to score one band of face sizes)."""
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_ignored = (short_side(gt_boxes) < min_size) | (short_side(gt_boxes) >= max_size)
    gt_found = np.zeros(len(gt_boxes), dtype=bool)
    outcome = np.full(len(det_boxes), FALSE_POSITIVE, dtype=np.int8)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return FrameMatch(outcome, gt_found, gt_ignored)
    iou = box_iou(det_boxes, gt_boxes)
    for d in np.argsort(-det_scores, kind="stable"):
        open_iou = np.where(gt_found | gt_ignored, -1.0, iou[d])
        best = int(np.argmax(open_iou))
        if open_iou[best] >= iou_threshold:
            gt_found[best] = True
            outcome[d] = TRUE_POSITIVE
        elif gt_ignored.any() and iou[d][gt_ignored].max() >= iou_threshold:
            outcome[d] = IGNORED
    return FrameMatch(outcome, gt_found, gt_ignored)


def average_precision(scores, is_true, n_faces) -> float:
    """All-point interpolated AP (PASCAL VOC 2010+) of ranked detections against `n_faces` labeled faces."""
    if n_faces == 0:
        return float("nan")
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    hits = np.asarray(is_true, dtype=np.float64)[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    recall = np.concatenate([[0.0], tp / n_faces, [tp[-1] / n_faces if len(tp) else 0.0]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-12), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the precision envelope
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


@dataclass
class DetectionMetrics:
    ap50: float                 # AP at IoU 0.5 over the detections the detector returned
    recall: float               # found / counted faces, at the detector's thresholds
    precision: float
    false_per_frame: float      # false detections per frame
    recall_per_class: dict = field(default_factory=dict)   # class -> recall
    faces_per_class: dict = field(default_factory=dict)    # class -> counted faces
    frames: int = 0
    faces: int = 0              # counted (not ignored) faces
    ignored_faces: int = 0
    detections: int = 0         # detections not on ignored faces
    min_size: float = 0.0

    def as_dict(self) -> dict:
        """Plain types only (fits a weights_only checkpoint and JSON)."""
        return asdict(self)


def evaluate(predictions, truths, iou_threshold=0.5, min_size=0.0, max_size=np.inf) -> DetectionMetrics:
    """predictions: per frame (boxes (N,4), scores (N,)); truths: per frame (boxes (M,4), classes [M]).
    Faces outside [min_size, max_size) px (short side) are ignored."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predicted frames for {len(truths)} labeled frames")
    all_scores, all_true = [], []
    found, counted = {}, {}
    n_fp = n_ignored = 0
    for (det_boxes, det_scores), (gt_boxes, gt_classes) in zip(predictions, truths):
        m = match_frame(det_boxes, det_scores, gt_boxes, iou_threshold, min_size, max_size)
        kept = m.outcome != IGNORED
        all_scores.append(np.asarray(det_scores, dtype=np.float64).reshape(-1)[kept])
        all_true.append(m.outcome[kept] == TRUE_POSITIVE)
        n_fp += int(np.sum(m.outcome == FALSE_POSITIVE))
        n_ignored += int(m.gt_ignored.sum())
        for cls, hit, ignored in zip(gt_classes, m.gt_found, m.gt_ignored):
            if not ignored:
                counted[cls] = counted.get(cls, 0) + 1
                found[cls] = found.get(cls, 0) + int(hit)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    is_true = np.concatenate(all_true) if all_true else np.zeros(0, dtype=bool)
    n_faces, n_tp = sum(counted.values()), int(is_true.sum())
    return DetectionMetrics(
        ap50=average_precision(scores, is_true, n_faces),
        recall=n_tp / n_faces if n_faces else float("nan"),
        precision=n_tp / len(is_true) if len(is_true) else float("nan"),
        false_per_frame=n_fp / len(truths) if truths else float("nan"),
        recall_per_class={c: found[c] / counted[c] for c in sorted(counted)},
        faces_per_class=dict(sorted(counted.items())),
        frames=len(truths), faces=n_faces, ignored_faces=n_ignored, detections=len(is_true),
        min_size=float(min_size))


def evaluate_detector(detect, items, min_size=0.0, iou_threshold=0.5, desc="evaluating", progress=True):
    """Run `detect(image) -> (boxes, probs)` on labeled images (objects with image_path, boxes, classes,
    e.g. cctv.labels.LabeledImage) and score it. Returns (DetectionMetrics, per-frame predictions)."""
    from tqdm import tqdm

    from .images import load_image

    predictions = []
    for item in tqdm(items, desc=desc, unit="frame", disable=not progress, leave=False):
        boxes, probs = detect(load_image(item.image_path))
        predictions.append((np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(probs, np.float32).reshape(-1)))
    truths = [(item.boxes, list(item.classes)) for item in items]
    return evaluate(predictions, truths, iou_threshold, min_size), predictions


def format_table(rows: dict) -> str:
    """A comparison table: rows maps a name (e.g. "pretrained", "fine-tuned") to DetectionMetrics or its dict."""
    from .tables import format_table as text_table, percent

    rows = {k: (v.as_dict() if isinstance(v, DetectionMetrics) else v) for k, v in rows.items()}
    classes = sorted({c for r in rows.values() for c in r["recall_per_class"]})
    head = ["model", "AP@0.5", "recall", "precision", "false/frame"] + [f"recall {c}" for c in classes]
    cells = [[name, percent(r["ap50"]), percent(r["recall"]), percent(r["precision"]), f"{r['false_per_frame']:.3f}"]
             + [percent(r["recall_per_class"].get(c)) for c in classes] for name, r in rows.items()]
    lines = [text_table(head, cells, rule=True)]
    any_row = next(iter(rows.values()), None)
    if any_row is not None:
        faces = ", ".join(f"{n} {c}" for c, n in any_row["faces_per_class"].items())
        lines.append(f"({any_row['frames']} frames, {any_row['faces']} faces: {faces}; "
                     f"{any_row['ignored_faces']} faces under {any_row['min_size']:g} px ignored; percentages)")
    return "\n".join(lines)


def kept_detections(reference, candidate, iou_threshold=0.5):
    """(found, total): how many of the reference detections (a list of (boxes, scores) per frame) a candidate
    detector's (same form) finds again at IoU >= iou_threshold. E.g. gated vs whole-frame detection."""
    found = total = 0
    for (ref_boxes, _), (boxes, scores) in zip(reference, candidate):
        found += int(match_frame(boxes, scores, ref_boxes, iou_threshold).gt_found.sum())
        total += len(np.asarray(ref_boxes).reshape(-1, 4))
    return found, total
