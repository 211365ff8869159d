"""The GPU's way through the cascade, run on the CPU: a batch of frames at once, integral image and pyramid
by tensor ops, vectorised NMS, whole feature maps (no bands, no chunks). It must find what the CPU path
finds frame by frame, so that CI guards the code a GPU runs even on a machine without one."""
import numpy as np
import pytest
import torch

import mtcnn.cascade as cascade
import mtcnn.nets as nets
from cctv.images import load_image
from mtcnn import MTCNN
from mtcnn.nms import _nms_torch


@pytest.fixture()
def device_path(monkeypatch):
    cpu_nms = cascade.batched_nms

    def vectorised_nms(boxes, scores, groups, threshold, mode="union"):
        if mode == "min" or len(boxes) == 0:
            return cpu_nms(boxes, scores, groups, threshold, mode)
        return _nms_torch(boxes, scores, groups, threshold)

    monkeypatch.setattr(cascade, "resize_area", cascade._resize_area_torch)
    monkeypatch.setattr(cascade, "batched_nms", vectorised_nms)
    monkeypatch.setattr(nets, "PNET_BAND_ROWS", 10 ** 9)
    monkeypatch.setattr(nets, "CROP_PIXELS_PER_CHUNK", 10 ** 9)


def test_batched_tensor_path_finds_what_the_cpu_path_finds(shared_dir, device_path):
    photo = load_image(shared_dir / "data" / "multiface.jpg")
    frames = np.stack([photo, np.ascontiguousarray(photo[:, ::-1])])
    mtcnn = MTCNN(keep_all=True, select_largest=False)
    expected = [mtcnn.detect(frame) for frame in frames]  # the CPU path, one frame at a time

    integral = cascade._integral_torch(torch.from_numpy(frames).permute(0, 3, 1, 2))
    with torch.inference_mode():
        found = cascade.detect_batch(mtcnn._nets, integral, mtcnn.min_face_size, mtcnn.thresholds, mtcnn.factor)
    for i, (boxes, probs) in enumerate(expected):
        mine = (found.image == i).numpy()
        order = np.argsort(-found.scores[mine].numpy(), kind="stable")
        assert len(boxes) >= 6 and mine.sum() == len(boxes)  # the six faces (the mirror finds one more)
        np.testing.assert_allclose(found.boxes[mine].numpy()[order], boxes, atol=1e-2)
        np.testing.assert_allclose(found.scores[mine].numpy()[order], probs, atol=1e-5)


def test_pnet_box_corners_divide_by_the_scale_as_the_reference_does():
    """facenet-pytorch divides cell corners by the scale in float32 and floors. Multiplying by the reciprocal
    (what CUDA does with a Python float divisor) moves corners by a pixel: 1 box in 10 differed on a GPU."""
    scale, height, width = 0.6, 40, 60  # the first pyramid scale at min_face_size 20
    logits = torch.zeros((1, 2, height, width))
    logits[:, 1] = 5.0  # every cell a candidate
    found = cascade._pnet_boxes(torch.zeros((1, 4, height, width)), logits, scale, 0.6)
    yy, xx = np.divmod(np.arange(height * width), width)
    cells = np.stack([xx, yy], 1).astype(np.float32)
    divided = np.floor((2 * cells + 1) / np.float32(scale))
    by_reciprocal = np.floor((2 * cells + 1) * np.float32(1 / scale))
    assert (divided != by_reciprocal).any()  # the two really differ at this scale
    np.testing.assert_array_equal(found.boxes[:, 0:2].numpy(), divided)
    np.testing.assert_array_equal(found.boxes[:, 2:4].numpy(), np.floor((2 * cells + 12) / np.float32(scale)))
