"""The GPU's vectorised NMS must keep exactly the boxes that greedy NMS keeps (checked here on the CPU)."""
import numpy as np
import pytest
import torch

from mtcnn.nms import _nms_opencv, _nms_torch


def random_boxes(rng, n, groups):
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(5, 60, (n, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + wh], 1), dtype=torch.float32)
    scores = torch.tensor(rng.uniform(0, 1, n), dtype=torch.float32)
    return boxes, scores, torch.tensor(rng.integers(0, groups, n))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_vectorised_nms_equals_greedy(seed, threshold):
    boxes, scores, groups = random_boxes(np.random.default_rng(seed), 400, 3)
    greedy = set(_nms_opencv(boxes, scores, groups, threshold).tolist())
    vectorised = _nms_torch(boxes, scores, groups, threshold, max_elements=400 * 400)
    assert set(vectorised.tolist()) == greedy
    assert len(vectorised) == len(greedy)


def test_kept_boxes_do_not_overlap_beyond_threshold():
    boxes, scores, groups = random_boxes(np.random.default_rng(1), 300, 1)
    keep = _nms_opencv(boxes, scores, groups, 0.5)
    b = boxes[keep]
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area = (b[:, 2:] - b[:, :2]).prod(1)
    iou = inter / (area[:, None] + area[None, :] - inter)
    iou.fill_diagonal_(0)
    assert iou.max() <= 0.5
    assert 0 < len(keep) < len(boxes)


def test_gpu_integral_image_and_area_resize_match_the_cpu_ones():
    """The GPU builds the integral image and the pyramid levels with tensor ops, the CPU with OpenCV and
    numpy: same table, same levels; and the levels equal F.interpolate(mode='area') to float rounding."""
    import torch.nn.functional as F

    from mtcnn.cascade import _integral_torch, _resize_area_torch, integral_image, resize_area

    frames = torch.randint(0, 256, (2, 3, 53, 71)).float()
    table = integral_image(frames)
    assert torch.equal(_integral_torch(frames).long(), table.long())
    for size in [(37, 50), (12, 17), (53, 71)]:
        expected = F.interpolate(frames, size=size, mode="area")
        torch.testing.assert_close(resize_area(table, *size), expected, atol=1e-4, rtol=0)
        assert torch.equal(_resize_area_torch(table, *size), resize_area(table, *size))


def test_a_part_of_a_pyramid_level_has_the_whole_levels_pixels():
    """A region's window of a level (made from the integral's columns under it only, and with more rows than
    one block of the CPU's resize) holds exactly the pixels of that part of the whole level."""
    from mtcnn.cascade import _ROWS_PER_BLOCK, integral_image, resize_area

    frames = torch.randint(0, 256, (1, 3, 301, 457)).float()
    table = integral_image(frames)
    for size in [(181, 275), (60, 91), (301, 457)]:
        whole = resize_area(table, *size)
        for rows, cols in [(slice(0, 2), slice(0, 3)), (slice(10, 10 + _ROWS_PER_BLOCK + 7), slice(33, 59)),
                           (slice(size[0] - 13, size[0]), slice(size[1] - 1, size[1]))]:
            assert torch.equal(resize_area(table, *size, rows, cols), whole[:, :, rows, cols])
