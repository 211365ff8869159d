"""MTCNN's multi-task loss: face/non-face cross-entropy with online hard-example mining, box regression
on positives and part faces, and (ONet) landmark consistency with the starting net."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .samples import NEGATIVE, PART, POSITIVE

# MTCNN's task weights: PNet/RNet face 1, box 0.5; ONet face 1, box 0.5, landmarks (here: consistency) 1.
BOX_WEIGHT = 0.5
LANDMARK_WEIGHT = 0.5


def ohem_cross_entropy(logits, labels, keep=0.7):
    """Mean cross-entropy over the hardest `keep` fraction of the positive and negative samples
    (MTCNN's online hard-example mining); part faces carry no face label."""
    use = (labels == POSITIVE) | (labels == NEGATIVE)
    if not use.any():
        return logits.sum() * 0.0
    losses = F.cross_entropy(logits[use], (labels[use] == POSITIVE).long(), reduction="none")
    k = max(1, int(round(keep * losses.numel())))
    return torch.topk(losses, k, sorted=False).values.mean()


def box_regression_loss(reg, target, labels):
    """Mean squared error of the 4 offsets on positives and part faces."""
    use = (labels == POSITIVE) | (labels == PART)
    if not use.any():
        return reg.sum() * 0.0
    return F.mse_loss(reg[use], target[use], reduction="none").sum(dim=1).mean()


def landmark_consistency_loss(points, target, labels):
    """Keeps ONet's landmarks where the starting net put them (we have no landmark labels)."""
    use = labels == POSITIVE
    if target is None or not use.any():
        return points.sum() * 0.0
    return F.mse_loss(points[use], target[use], reduction="none").sum(dim=1).mean()


@dataclass
class LossParts:
    total: torch.Tensor
    face: float
    box: float
    landmarks: float


def stage_loss(outputs, labels, target, landmark_target=None, keep=0.7) -> LossParts:
    """outputs: a stage net's raw outputs ((reg, logits) or (reg, landmarks, logits)); PNet's (B,C,1,1)
    maps on 12-px crops are flattened to (B,C)."""
    outputs = [o.flatten(1) for o in outputs]
    reg, logits = outputs[0], outputs[-1]
    face = ohem_cross_entropy(logits, labels, keep)
    box = box_regression_loss(reg, target, labels)
    total = face + BOX_WEIGHT * box
    lm = torch.zeros(())
    if len(outputs) == 3 and landmark_target is not None:
        lm = landmark_consistency_loss(outputs[1], landmark_target, labels)
        total = total + LANDMARK_WEIGHT * lm
    return LossParts(total, face.item(), box.item(), lm.item())
