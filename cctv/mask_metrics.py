"""Binary classification metrics of the mask classifier (positive = protected), and the write-up's report block."""
import numpy as np


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); nan with one class only."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, np.float64)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(labels, probs, threshold=0.5) -> dict:
    """Counts and rates at `threshold`, plus ROC AUC; plain types, ready for a checkpoint or JSON."""
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(probs) >= threshold
    tp, fp = int((pred & labels).sum()), int((pred & ~labels).sum())
    tn, fn = int((~pred & ~labels).sum()), int((~pred & labels).sum())
    n = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"num_true_positive": tp, "num_false_positive": fp, "num_true_negative": tn,
            "num_false_negative": fn, "num_correct": tp + tn, "num_incorrect": fp + fn,
            "accuracy": (tp + tn) / n if n else 0.0, "precision": precision, "recall": recall, "f1": f1,
            "roc_auc": roc_auc(labels, probs)}


def report_block(m: dict, no_face: int) -> str:
    """The write-up's block, exactly, then the extra metrics."""
    lines = ["All done!"] + [f"{k}: {m[k]}" for k in ("num_true_positive", "num_false_positive", "num_true_negative",
                                                     "num_false_negative", "num_correct", "num_incorrect")]
    lines.append(f"Accuracy: {m['accuracy']:.2f}")
    lines += [f"Precision: {m['precision']:.4f}", f"Recall: {m['recall']:.4f}", f"F1: {m['f1']:.4f}",
              f"ROC AUC: {m['roc_auc']:.4f}", f"num_no_face_found: {no_face}"]
    return "\n".join(lines)


def evaluate_classifier(clf, faces) -> dict:
    """Metrics of a MaskClassifier on a FaceSet, with the count of images where no face was found."""
    metrics = binary_metrics(faces.labels, clf.predict(faces.crops))
    return {**metrics, "faces": len(faces), "no_face": len(faces.no_face), "unreadable": len(faces.unreadable)}
