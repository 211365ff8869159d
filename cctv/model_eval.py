"""Side-by-side detector quality on labeled frames (evaluate_models.py): for each model, AP@0.5, recall of
masked and unmasked faces and false boxes per frame, overall and by face size (short side, px)."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .detection_eval import evaluate

SIZE_BANDS = ((0, 15), (15, 25), (25, 40), (40, np.inf))
PRETRAINED = "pretrained"


def band_name(lo, hi):
    if lo == 0:
        return f"<{hi:g}"
    return f">{lo:g}" if hi == np.inf else f"{lo:g}-{hi:g}"


@dataclass
class ModelSpec:
    name: str
    weights: str = None        # None: the pretrained weights
    min_face_size: float = 20
    thresholds: tuple = (0.6, 0.7, 0.7)

    def build(self, device="cpu"):
        from mtcnn import MTCNN

        return MTCNN(min_face_size=self.min_face_size, thresholds=self.thresholds, keep_all=True,
                     select_largest=False, weights_path=self.weights, device=device)


def spec_from_checkpoint(name, path, min_face_size=None, thresholds=None) -> ModelSpec:
    """A model with the detection settings its checkpoint records (a CCTV or fine-tuned MTCNN), unless
    given; the pretrained weights (path None) run at MTCNN's defaults."""
    from .cctv_models import mtcnn_checkpoint_settings

    recorded = mtcnn_checkpoint_settings(path) if path else {}
    return ModelSpec(name, str(path) if path else None,
                     float(min_face_size if min_face_size is not None else recorded.get("min_face_size", 20)),
                     tuple(thresholds if thresholds is not None else recorded.get("thresholds", (0.6, 0.7, 0.7))))


def predict(spec: ModelSpec, items, device="cpu", progress=True):
    """Per labeled frame (boxes, scores) of a model."""
    from tqdm import tqdm

    from .images import load_image

    detector = spec.build(device)
    out = []
    for item in tqdm(items, desc=f"detecting ({spec.name})", unit="frame", disable=not progress, leave=False):
        boxes, probs = detector.detect(load_image(item.image_path))
        out.append((np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(probs, np.float32).reshape(-1)))
    return out


def compare(specs, items, min_size=0.0, device="cpu", progress=True):
    """{model name: {"all": DetectionMetrics, band name: DetectionMetrics, ...}} on the labeled items.
    "all" scores every face from min_size px; a band scores its faces only (the others are ignored)."""
    truths = [(item.boxes, list(item.classes)) for item in items]
    results = {}
    for spec in specs:
        predictions = predict(spec, items, device, progress)
        rows = {"all": evaluate(predictions, truths, min_size=min_size)}
        for lo, hi in SIZE_BANDS:
            rows[band_name(lo, hi)] = evaluate(predictions, truths, min_size=max(lo, min_size), max_size=hi)
        results[spec.name] = rows
    return results


def format_comparison(results, specs=None) -> str:
    """One table: a row per model and face-size band; columns AP@0.5, recall masked / unmasked, false boxes
    per frame (overall rows only: a false box has no face size), faces counted."""
    from .tables import format_table, percent

    head = ["model", "faces", "AP@0.5", "recall", "masked", "unmasked", "false/frame", "n"]
    rows = [[name if band == "all" else "", band, percent(m.ap50), percent(m.recall),
             percent(m.recall_per_class.get("protected")), percent(m.recall_per_class.get("unprotected")),
             f"{m.false_per_frame:.3f}" if band == "all" else "", m.faces]
            for name, bands in results.items() for band, m in bands.items()]
    lines = [format_table(head, rows, align="ll" + "r" * 6, sep=" ", rule=True, min_widths=(30, 7))]
    if specs:
        lines.append("settings: " + "; ".join(f"{s.name}: min_face_size {s.min_face_size:g}, thresholds "
                                              f"{','.join(f'{t:g}' for t in s.thresholds)}" for s in specs))
    lines.append("(percentages; faces by short side in px; masked = protected, unmasked = unprotected)")
    return "\n".join(lines)


def default_specs(mtcnn_model_path=None, shipped=None, min_face_size=None, thresholds=None):
    """The pretrained MTCNN, the shipped CCTV model (if present) and the given one."""
    from .cctv_models import SHIPPED_MTCNN

    shipped = shipped or SHIPPED_MTCNN
    specs = [spec_from_checkpoint(PRETRAINED, None, min_face_size, thresholds)]
    if Path(shipped).is_file():
        specs.append(spec_from_checkpoint(f"shipped ({Path(shipped).name})", shipped, min_face_size, thresholds))
    if mtcnn_model_path:
        specs.append(spec_from_checkpoint(f"given ({Path(mtcnn_model_path).name})", mtcnn_model_path,
                                          min_face_size, thresholds))
    return specs


def threshold_sweep(predictions, truths, cuts, min_size=0.0):
    """Recall and false boxes per frame if the last stage's threshold were each of `cuts` (detections kept
    when their score passes): [(cut, DetectionMetrics)]. predictions made at a threshold below the cuts."""
    out = []
    for cut in cuts:
        kept = [(b[s >= cut], s[s >= cut]) for b, s in predictions]
        out.append((cut, evaluate(kept, truths, min_size=min_size)))
    return out
