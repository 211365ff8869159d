"""Non-maximum suppression for the cascade: OpenCV's on the CPU, a vectorised torch version on a GPU.

'union' is IoU with areas w*h (as torchvision and OpenCV compute it); 'min' divides the intersection by
the smaller box and counts pixels inclusively (w+1)*(h+1), as MTCNN's original last stage does (few
boxes: always on the host)."""
import cv2
import numpy as np
import torch


def batched_nms(boxes, scores, groups, threshold, mode="union"):
    """Indices (into the inputs, best first within each group) of the boxes that survive greedy NMS
    run independently per group (an image, or an image and a scale). boxes: (N,4) x1,y1,x2,y2."""
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    if mode == "min":  # the last stage, few boxes: on the host, with MTCNN's own tie-breaking
        keep = _nms_min(boxes.cpu().numpy(), scores.cpu().numpy(), groups.cpu().numpy(), threshold)
        return keep.to(boxes.device)
    if boxes.is_cuda and _largest_group(groups) <= GPU_MAX_GROUP:
        return _nms_torch(boxes, scores, groups, threshold)
    return _nms_opencv(boxes.cpu(), scores.cpu(), groups.cpu(), threshold).to(boxes.device)


# Above this many boxes in one group the dense pairwise matrix costs more than the host's greedy loop.
GPU_MAX_GROUP = 8192


def _largest_group(groups):
    return int(torch.unique(groups, return_counts=True)[1].max())


def _nms_opencv(boxes, scores, groups, threshold):
    b = boxes.double().numpy()
    xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxesBatched(xywh, scores.double().numpy(), groups.int().numpy(), -np.inf, threshold)
    return torch.as_tensor(np.asarray(keep, dtype=np.int64).reshape(-1))


def _nms_min(boxes, scores, groups, threshold):
    # MTCNN's own greedy loop, tie-breaking included: among equal scores (ONet saturates at 1.0) the
    # order of np.argsort decides, and matching it keeps the same box that facenet-pytorch keeps.
    boxes = boxes.astype(np.float64) + (groups.astype(np.float64) * (boxes.max() + 1))[:, None]
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = w * h / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64))


def _nms_torch(boxes, scores, groups, threshold, max_elements=1 << 27):
    """Greedy NMS for all groups at once on the GPU, as a fixed point: keep[i] = no kept box ranked before
    i in its group overlaps it beyond the threshold. Iterating that rule from 'keep all' settles on exactly
    the greedy answer, using only dense batched tensor ops (few host syncs, no per-box loop)."""
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]  # by group, best first inside each group
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=boxes.device) - torch.repeat_interleave(starts, counts)
    slot = torch.repeat_interleave(torch.arange(counts.numel(), device=boxes.device), counts)
    n_groups, width = counts.numel(), int(counts.max())
    padded = boxes.new_zeros((n_groups, width, 4))
    padded[slot, rank] = boxes[order, :4]
    valid = torch.zeros((n_groups, width), dtype=torch.bool, device=boxes.device)
    valid[slot, rank] = True
    keep = torch.zeros_like(valid)
    step = max(1, max_elements // (width * width))
    for g in range(0, n_groups, step):
        keep[g:g + step] = _greedy_fixed_point(padded[g:g + step], valid[g:g + step], threshold)
    return order[keep[slot, rank]]


def _greedy_fixed_point(b, valid, threshold):
    width = b.shape[1]
    # sup[g, j, i]: box j (ranked better) would suppress box i in group g
    sup = (_iou(b, b) > threshold) & valid[:, :, None] & valid[:, None, :]
    sup = sup.triu(1).to(torch.float16)
    keep = valid.clone()
    for it in range(width):
        new = valid & (torch.bmm(keep[:, None, :].to(sup.dtype), sup)[:, 0] == 0)
        if it % 4 == 3 or it == width - 1:
            if torch.equal(new, keep):
                break
        keep = new
    return keep


def _iou(a, b):
    """Pairwise IoU of boxes (..., N, 4) and (..., M, 4): (..., N, M)."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:4], b[..., None, :, 2:4])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter)
