"""Our MTCNN against facenet-pytorch 2.6.0's answers recorded in ../shared/reference (77 images)."""
import json

import numpy as np
import pytest
import torch

from mtcnn import MTCNN
from tests.frames import read_frame


def iou_matrix(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.fixture(scope="module")
def reference(shared_dir):
    ref = json.loads((shared_dir / "reference" / "facenet_mtcnn_reference.json").read_text())
    frames = {}

    def frame(name):  # read on first use: the fast tier reads only its sample
        if name not in frames:
            frames[name] = read_frame(shared_dir, name)
        return frames[name]
    return ref, frame


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# The fast tier checks every 6th reference image (photos, both CCTV GIFs and a video frame); the slow tier all 77.
SAMPLES = {"every_6th": (6, 10), "all": (1, 50)}  # name: (step through the records, least reference boxes)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("setting", ["default", "seed_video"])
@pytest.mark.parametrize("sample", ["every_6th", pytest.param("all", marks=pytest.mark.slow)])
def test_parity_with_facenet_pytorch(reference, sample, setting, device):
    ref, frame = reference
    step, least_boxes = SAMPLES[sample]
    mtcnn = MTCNN(min_face_size=20, factor=0.709, thresholds=ref["settings"][setting]["thresholds"],
                  keep_all=True, select_largest=False, device=device)
    n_ref = n_ours = matched = unmatched_ours = 0
    prob_err, crop_err = [], []
    for rec in ref["records"][::step]:
        want = rec[setting]
        ref_boxes = np.asarray(want["boxes"], np.float64).reshape(-1, 4)
        img = frame(rec["image"])
        assert img.shape[:2] == (rec["height"], rec["width"])
        boxes, probs = mtcnn.detect(img)
        assert boxes.shape == (len(probs), 4)
        n_ref += len(ref_boxes)
        n_ours += len(boxes)
        if len(boxes) == 0 or len(ref_boxes) == 0:
            unmatched_ours += len(boxes)
            continue
        iou = iou_matrix(ref_boxes, boxes.astype(np.float64))
        best = iou.argmax(1)
        hit = iou[np.arange(len(ref_boxes)), best] >= 0.9
        matched += hit.sum()
        unmatched_ours += (iou.max(0) < 0.9).sum()
        crops = mtcnn.extract(img, boxes).mean(dim=(1, 2, 3)).numpy()
        for r, o in zip(np.flatnonzero(hit), best[hit]):
            prob_err.append(abs(want["probs"][r] - probs[o]))
            if "crop_mean" in want:
                crop_err.append(abs(want["crop_mean"][r] - crops[o]))
    recall = matched / n_ref
    extra = unmatched_ours / max(n_ours, 1)
    print(f"\n[{sample}, {setting}, {device}] reference boxes {n_ref}, ours {n_ours}, matched at IoU>=0.9: {recall:.4f}, "
          f"ours unmatched: {extra:.4f}, max |dprob| {max(prob_err):.5f}, "
          f"max |dcrop mean| {max(crop_err) if crop_err else float('nan'):.5f}")
    assert n_ref > least_boxes
    assert recall >= 0.97
    assert extra <= 0.03
    assert max(prob_err) <= 0.02
    assert crop_err and max(crop_err) <= 0.02
