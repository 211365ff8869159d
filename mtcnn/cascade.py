"""The MTCNN cascade (PNet -> RNet -> ONet) on a batch of same-size frames, as tensor operations that run
on the CPU or a GPU alike. Each stage keeps facenet-pytorch's arithmetic, so the answers match it."""
import bisect
import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .nms import batched_nms

PNET_STRIDE, PNET_CELL = 2, 12
# A region's window on a pyramid level reaches this far (level pixels) beyond it: every PNet window with at least
# half of it in the region is scored. The job's regions are grown by 15% of their size first, so a face in
# one lies inside it; a full 12 px cost 7-10% of the gated job's speed and found nothing more (bench_motion.py).
REGION_HALO = PNET_CELL // 2
WINDOW_QUANTUM = 16  # region windows on a pyramid level come in sizes of multiples of this (see _aligned_span)


@dataclass
class Candidates:
    """Boxes of a batch: boxes (N,4) x1,y1,x2,y2, scores (N,), image (N,) frame index in the batch."""
    boxes: torch.Tensor
    scores: torch.Tensor
    image: torch.Tensor
    landmarks: torch.Tensor = None  # (N,5,2) after ONet

    def take(self, idx):
        lm = None if self.landmarks is None else self.landmarks[idx]
        return Candidates(self.boxes[idx], self.scores[idx], self.image[idx], lm)

    def __len__(self):
        return self.boxes.shape[0]


MEAN, SCALE = 127.5, 1 / 128  # the nets' input: (x - 127.5) / 128, facenet-pytorch's, also its post_process


def standardise(x):
    return (x - MEAN) * SCALE


def pyramid_scales(height, width, min_face_size, factor):
    """Scales at which PNet's 12-px window sees faces from min_face_size up to the whole frame. Below a
    min_face_size of 12 the first levels are larger than the frame (see pyramid_level)."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def pnet_stage(pnet_raw, integral, min_face_size, factor, threshold, regions=None):
    """Proposals from PNet on the image pyramid: NMS 0.5 per scale, then 0.7 over all scales,
    box regression and squaring. integral: the frames' integral_image; pnet_raw: PNet on 0..255 input.
    regions: rectangles (x1, y1, x2, y2) in frame pixels searched in every frame of the batch, None for the
    whole frame. A region is searched on the whole frame's pyramid (same scales, same grid; see level_windows),
    so the faces found in it are those whole-frame detection finds there."""
    h, w = integral.shape[1] - 1, integral.shape[2] - 1
    scales = pyramid_scales(h, w, min_face_size, factor)
    canvas = regions is not None and integral.device.type == "cpu"
    windows = _windows(regions, scales, h, w, PNET_STRIDE if canvas else None)
    if not windows:
        return _empty(integral.device)
    if canvas and len(windows) > 1:
        c, level = _pnet_on_canvas(pnet_raw, integral, windows, threshold)
        if c is None:  # too large for one canvas
            c, level = _pnet_per_window(pnet_raw, integral, _windows(regions, scales, h, w), threshold)
    else:
        c, level = _pnet_per_window(pnet_raw, integral, windows, threshold)
    per_scale = c.image * len(scales) + level
    # NMS within each image and scale; kept in scale order so that ties at the next NMS break as in MTCNN
    c = c.take(batched_nms(c.boxes[:, :4], c.scores, per_scale, 0.5).sort().values)
    c = c.take(batched_nms(c.boxes[:, :4], c.scores, c.image, 0.7))
    size = c.boxes[:, 2:4] - c.boxes[:, 0:2]
    corners = c.boxes[:, 0:4] + c.boxes[:, 4:8] * size.repeat(1, 2)
    return Candidates(square(corners), c.scores, c.image)


def _windows(regions, scales, height, width, quantum=None):
    """(level index, scale, level size, rows, cols) of each window to search (see level_windows)."""
    return [(s, scale, size, rows, cols) for s, scale in enumerate(scales)
            for size in [(int(height * scale + 1), int(width * scale + 1))]
            for rows, cols in level_windows(regions, scale, *size, quantum)]


def _pnet_per_window(pnet_raw, integral, windows, threshold):
    """PNet on each window (a whole level, or a part of one) by itself: (Candidates, their level index)."""
    found, levels = [], []
    for s, scale, size, rows, cols in windows:
        reg, logits = pnet_raw(pyramid_level(integral, *size, scale, rows, cols))
        found.append(_pnet_boxes(reg, logits, scale, threshold, (cols.start // PNET_STRIDE, rows.start // PNET_STRIDE)))
        levels.append(torch.full_like(found[-1].image, s))
    return _cat(found), torch.cat(levels)


CANVAS_MAX_PIXELS = 512 * 512  # larger: window by window, where PNet runs in row bands
CANVAS_QUANTUM = 32  # canvas sides come in multiples of this: oneDNN reuses its compiled convolutions


def _pnet_on_canvas(pnet_raw, integral, windows, threshold):
    """_pnet_per_window's answer from one PNet call: the windows side by side on one canvas, each at even
    coordinates (PNet's stride-2 grid). A cell whose 12-px field lies inside one window scores as it does on
    that window alone; the others are dropped. A window with an odd side ends in a half pooling cell, which
    pnet_raw (PNet.forward_raw) closes with a copy of its last column or row (max(x, x) = x, as ceil-mode pooling keeps
    it). Region frames search 9-10 small windows: one call instead of 9-10 saves most of their cost."""
    layout = CanvasLayout([(rows.stop - rows.start, cols.stop - cols.start) for _, _, _, rows, cols in windows])
    if layout.height * layout.width > CANVAS_MAX_PIXELS:
        return None, None
    reg, logits = pnet_raw(_fill_canvas(integral, windows, layout), layout.odd_columns, layout.odd_rows)
    window = layout.window_map(reg.shape[2], reg.shape[3])
    image, yy, xx, probs = _confident_cells(logits, threshold, window >= 0)
    win = window[yy, xx]
    order = torch.argsort(((win * integral.shape[0] + image) * reg.shape[2] + yy) * reg.shape[3] + xx)  # as per window
    image, yy, xx, probs, win = image[order], yy[order], xx[order], probs[order], win[order]
    # a canvas cell's place on its level's grid: minus the window's origin on the canvas, plus its start on the level
    shift = torch.tensor([[cols.start // PNET_STRIDE - x // PNET_STRIDE, rows.start // PNET_STRIDE - y // PNET_STRIDE]
                          for (*_, rows, cols), (y, x) in zip(windows, layout.origins)])
    cell = torch.stack([xx, yy], dim=1) + shift[win]
    scale = torch.tensor([w[1] for w in windows], dtype=reg.dtype)[win][:, None]
    level = torch.tensor([w[0] for w in windows], dtype=torch.long)[win]
    return _cell_candidates(reg, image, yy, xx, probs, cell, scale), level


def _fill_canvas(integral, windows, layout):
    """The canvas (B,3,height,width) float, channels-last: each window's pixels of its pyramid level at its
    origin, zeros elsewhere. Area-resized windows are written in place (no level made, then copied)."""
    canvas = np.zeros((integral.shape[0], layout.height, layout.width, 3), np.float32)
    for (s, scale, size, rows, cols), (y, x) in zip(windows, layout.origins):
        spot = canvas[:, y:y + rows.stop - rows.start, x:x + cols.stop - cols.start]
        pyramid_level(integral, *size, scale, rows, cols, out=spot)
    return torch.from_numpy(canvas).permute(0, 3, 1, 2)


class CanvasLayout:
    """Where each window (height, width) goes on a canvas: skyline packing, each window at even coordinates
    and an even distance from the next (see _pnet_on_canvas)."""

    def __init__(self, sizes):
        even = [(h + h % 2, w + w % 2) for h, w in sizes]
        side = math.sqrt(sum(h * w for h, w in even))
        widest = max(w for _, w in even)
        self.sizes = sizes
        # the smallest canvas of a few widths tried (a frame has about 10 windows)
        self.height, self.width, self.origins = min(
            (self._skyline(even, _round_up(max(widest, int(k * side)), CANVAS_QUANTUM)) for k in (1.0, 1.2, 1.5, 2.0)),
            key=lambda packed: (packed[0] * packed[1], packed[1]))
        # conv1's output column (row) beyond an odd window's last one, over the window's rows (columns)
        self.odd_columns = [(y, y + h - 2, x + w - 2) for (h, w), (y, x) in zip(sizes, self.origins) if w % 2]
        self.odd_rows = [(x, x + w - 1, y + h - 2) for (h, w), (y, x) in zip(sizes, self.origins) if h % 2]

    @staticmethod
    def _skyline(even, width):
        """(height, width, origins) of skyline packing at this width: tallest windows first, each at the lowest
        place where it fits (then the leftmost)."""
        # the canvas's filled outline: segment k spans [starts[k], starts[k + 1]) (the last to the width) at
        # height tops[k]; neighbours never share a height
        starts, tops = [0], [0]
        origins = [None] * len(even)
        for i in sorted(range(len(even)), key=lambda i: (-even[i][0], -even[i][1])):
            h, w = even[i]
            y, k = min((max(tops[k:bisect.bisect_left(starts, x + w)]), k)
                       for k, x in enumerate(starts) if x + w <= width)
            x = starts[k]
            origins[i] = (y, x)
            last = bisect.bisect_left(starts, x + w) - 1  # the last segment under the window
            rest_starts, rest_tops = starts[last + 1:], tops[last + 1:]
            if x + w < (rest_starts[0] if rest_starts else width):  # it goes on right of the window
                rest_starts, rest_tops = [x + w] + rest_starts, [tops[last]] + rest_tops
            starts, tops = starts[:k] + [x] + rest_starts, tops[:k] + [y + h] + rest_tops
            for j in (k + 1, k):  # merge the window's segment with a neighbour of the same height
                if 0 < j < len(tops) and tops[j] == tops[j - 1]:
                    del starts[j], tops[j]
        return _round_up(max(tops), CANVAS_QUANTUM), width, origins

    def window_map(self, out_height, out_width):
        """For each of PNet's output cells on the canvas, its window: a (out_height, out_width) long tensor, -1
        where a cell's field crosses a window's edge."""
        window = torch.full((out_height, out_width), -1, dtype=torch.long)
        for i, ((h, w), (y, x)) in enumerate(zip(self.sizes, self.origins)):
            y0, x0 = y // PNET_STRIDE, x // PNET_STRIDE
            window[y0:y0 + _pnet_cells(h), x0:x0 + _pnet_cells(w)] = i
        return window


def _round_up(n, quantum):
    return -(-n // quantum) * quantum


def _pnet_cells(length):
    """PNet's output cells along a side of `length` pixels (ceil-mode pooling, then two 3x3 convolutions)."""
    return (length - 1) // 2 - 4


def level_windows(regions, scale, height, width, quantum=None):
    """The parts (row slice, column slice) of a pyramid level of height x width to run PNet on: the whole
    level, or for each region the level's pixels under it grown by REGION_HALO (half a PNet window) on every
    side, so that every window with at least half of it in the region is scored. A part starts on an even pixel and has an even size
    (unless it ends at the level's edge): PNet's stride-2 grid and its ceil-mode pooling then give exactly
    the whole level's scores for the windows in it. Overlapping parts are merged."""
    if regions is None:
        return [(slice(0, height), slice(0, width))]
    boxes = []
    for x1, y1, x2, y2 in regions:
        rows = _aligned_span(y1 * scale - REGION_HALO, y2 * scale + REGION_HALO, height, quantum)
        cols = _aligned_span(x1 * scale - REGION_HALO, x2 * scale + REGION_HALO, width, quantum)
        if rows[1] - rows[0] >= PNET_CELL and cols[1] - cols[0] >= PNET_CELL:
            boxes.append([cols[0], rows[0], cols[1], rows[1]])
    return [(slice(b[1], b[3]), slice(b[0], b[2])) for b in merge_boxes(boxes)]


def _aligned_span(lo, hi, length, quantum=None):
    """[lo, hi) grown to start on an even pixel and to a size that is a multiple of `quantum` (or the level's
    edge): the PNet calls then see few distinct shapes, and oneDNN reuses its compiled convolutions instead of
    making new ones for every region (that cost more than the convolutions themselves)."""
    quantum = quantum or WINDOW_QUANTUM
    lo = max(0, int(math.floor(lo)) // PNET_STRIDE * PNET_STRIDE)
    size = _round_up(int(math.ceil(hi)) - lo, quantum)
    if lo + size >= length:  # moved back from the level's edge, and reaching it (an odd edge's last half cell too)
        return max(0, (length - size) // PNET_STRIDE * PNET_STRIDE), length
    return lo, lo + size


def merge_boxes(boxes):
    """Integer boxes [x1, y1, x2, y2] with the overlapping ones replaced by their bounding box, until none
    overlap."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


def _pnet_boxes(reg, logits, scale, threshold, cell_offset=(0, 0)):
    image, yy, xx, probs = _confident_cells(logits, threshold)
    if len(image) == 0:  # most windows of a region: skip the calls below
        return Candidates(reg.new_zeros((0, 8)), probs, image)
    cell = torch.stack([xx + cell_offset[0], yy + cell_offset[1]], dim=1)
    return _cell_candidates(reg, image, yy, xx, probs, cell, torch.full((), scale, dtype=reg.dtype, device=reg.device))


def _confident_cells(logits, threshold, where=None):
    """(image, row, column, probability) of PNet's output cells scored >= threshold (and inside `where`, a
    (h, w) bool mask of the cells to consider)."""
    # softmax(l)[1] >= t  <=>  l1 - l0 >= logit(t): the softmax is then computed for the candidates only.
    confident = logits[:, 1] - logits[:, 0] >= _logit(threshold) - 1e-6
    image, yy, xx = torch.nonzero(confident if where is None else confident & where, as_tuple=True)
    if len(image) == 0:
        return image, yy, xx, logits.new_zeros(0)
    probs = torch.softmax(logits[image, :, yy, xx], dim=1)[:, 1]
    keep = probs >= threshold
    return image[keep], yy[keep], xx[keep], probs[keep]


def _cell_candidates(reg, image, yy, xx, probs, cell, scale):
    """Candidates of PNet's cells (image, yy, xx) of its output `reg`: `cell` (N,2) their x, y on their level's
    grid, `scale` their level's scale, a tensor (0-dim, or (N,1)). Boxes carry their 4 regression offsets in
    columns 4..7 until the cross-scale NMS is done."""
    # A tensor divisor, not a Python float: CUDA multiplies by a scalar's reciprocal instead of dividing,
    # and floor() turns that last-bit difference into a pixel (1 box in 10 moved on a GPU).
    cell = cell.to(reg.dtype)
    top_left = ((PNET_STRIDE * cell + 1) / scale).floor()
    bottom_right = ((PNET_STRIDE * cell + PNET_CELL) / scale).floor()
    return Candidates(torch.cat([top_left, bottom_right, reg[image, :, yy, xx]], dim=1), probs, image)


def _logit(p):
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def refine_stage(net, integral, c, size, threshold):
    """RNet (size 24) or ONet (size 48) on crops of the candidates. Keeps the confident ones and returns
    them with the net's raw outputs for them: (Candidates, box regression (N,4), landmarks (N,10) or None)."""
    x1, y1, x2, y2 = clip_to_frame(c.boxes, integral.shape[2] - 1, integral.shape[1] - 1)
    valid = (y2 > y1) & (x2 > x1)
    c, x1, y1, x2, y2 = c.take(valid), x1[valid], y1[valid], x2[valid], y2[valid]
    if len(c) == 0:
        return c, c.boxes, c.boxes.new_zeros((0, 10))
    out = net(standardise(crop_resize_area(integral, c.image, x1, y1, x2, y2, size)))
    probs = torch.softmax(out[-1], dim=1)[:, 1]
    keep = probs > threshold
    return (Candidates(c.boxes[keep], probs[keep], c.image[keep]), out[0][keep],
            out[1][keep] if len(out) == 3 else None)


def regress(boxes, reg):
    """Apply RNet/ONet box regression (offsets relative to the inclusive box size)."""
    wh = (boxes[:, 2:4] - boxes[:, 0:2] + 1).repeat(1, 2)
    return boxes + reg * wh


def place_landmarks(boxes, raw):
    """ONet's 5 landmarks (N,10: x's then y's, relative to the box) in frame pixels (N,5,2)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2] + 1
    return (raw.view(-1, 2, 5) * wh[:, :, None] + boxes[:, 0:2, None] - 1).transpose(1, 2)


def clip_to_frame(boxes, width, height):
    """Integer crop rectangle [y1, y2) x [x1, x2) of each box, clipped to the frame (as MTCNN's pad())."""
    b = boxes.trunc().long()
    x1 = (b[:, 0] - 1).clamp(min=0)
    y1 = (b[:, 1] - 1).clamp(min=0)
    return x1, y1, b[:, 2].clamp(max=width), b[:, 3].clamp(max=height)


def integral_image(frames):
    """Summed-area table (B,H+1,W+1,3) of frames holding whole numbers 0..255, given as (B,3,H,W) tensors or
    a (B,H,W,3) uint8 array: exact in int32 up to 8 megapixels (int64 beyond). OpenCV's on the CPU."""
    if isinstance(frames, torch.Tensor) and frames.device.type != "cpu":
        return _integral_torch(frames)
    if isinstance(frames, torch.Tensor):
        frames = frames.permute(0, 2, 3, 1).to(torch.uint8).numpy()
    depth = cv2.CV_32S if frames.shape[1] * frames.shape[2] * 255 < 2 ** 31 else cv2.CV_64F
    tables = [cv2.integral(np.ascontiguousarray(f), sdepth=depth) for f in frames]
    return torch.from_numpy(tables[0][None] if len(tables) == 1 else np.stack(tables))  # no copy for one frame


def _integral_torch(frames):
    """integral_image with tensor ops, for frames already on a GPU."""
    b, ch, h, w = frames.shape
    dtype = torch.int32 if h * w * 255 < 2 ** 31 else torch.int64
    table = torch.zeros((b, h + 1, w + 1, ch), dtype=dtype, device=frames.device)
    table[:, 1:, 1:] = frames.permute(0, 2, 3, 1).to(dtype).cumsum(1).cumsum(2)
    return table


def pyramid_level(integral, height, width, scale, rows=None, cols=None, out=None):
    """One level of the image pyramid (B,3,height,width) float: area-averaged up to scale 1 (as MTCNN always
    did, including its one extra row and column at scale 1), bilinear when it enlarges the frame
    (min_face_size < 12): area bins would repeat pixels in blocks, unlike anything PNet was trained on.
    rows, cols: the part of the level to make (see resize_area); out: on the CPU, a (B,rows,cols,3) float32
    array to write it into (a part of a canvas)."""
    if scale <= 1:
        return resize_area(integral, height, width, rows, cols, out)
    if integral.device.type != "cpu":
        level = _enlarge_torch(integral, height, width)
    else:
        frames = frames_from_integral(integral)
        levels = [cv2.resize(np.ascontiguousarray(f), (width, height), interpolation=cv2.INTER_LINEAR)
                  for f in frames.permute(0, 2, 3, 1).numpy()]
        level = torch.from_numpy(np.stack(levels)).permute(0, 3, 1, 2)
    return _written(level[:, :, rows or slice(None), cols or slice(None)], out)  # rare: made whole, then cut


def _enlarge_torch(integral, height, width):
    """An enlarged pyramid level with tensor ops, for a GPU: the same bilinear values as OpenCV's
    INTER_LINEAR on float input (half-pixel centres)."""
    frames = frames_from_integral(integral)
    return torch.nn.functional.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False)


def frames_from_integral(integral):
    """The frames (B,3,H,W) float32 back from their integral image (exact: whole numbers)."""
    t = integral
    pixels = t[:, 1:, 1:] - t[:, :-1, 1:] - t[:, 1:, :-1] + t[:, :-1, :-1]
    return pixels.float().permute(0, 3, 1, 2)


def resize_area(integral, height, width, rows=None, cols=None, out=None):
    """Whole frames resized to height x width with area averaging: the bins of F.interpolate(mode='area'),
    read off the integral image (2-3x faster than resampling every level from the full frame).
    rows, cols: slices of the resized frame to make (default all of it); the pixels are those of the whole
    resized frame. (B,3,rows,cols) float, a channels-last view. out: see pyramid_level."""
    rows, cols = rows or slice(0, height), cols or slice(0, width)
    if integral.device.type != "cpu":
        return _resize_area_torch(integral, height, width, rows, cols, out)
    if out is None:
        out = np.empty((integral.shape[0], len(range(height)[rows]), len(range(width)[cols]), 3), np.float32)
    for table, frame_out in zip(integral.numpy(), out):
        _resize_area_numpy(table, height, width, rows, cols, frame_out)
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def _resize_area_torch(integral, height, width, rows=None, cols=None, out=None):
    """resize_area with tensor ops, for a GPU."""
    rows, cols = rows or slice(0, height), cols or slice(0, width)
    rows0, rows1 = (b[rows] for b in _whole_bins(integral.shape[1] - 1, height, integral.device))
    cols0, cols1 = (b[cols] for b in _whole_bins(integral.shape[2] - 1, width, integral.device))
    strip = integral[:, rows1] - integral[:, rows0]
    total = (strip[:, :, cols1] - strip[:, :, cols0]).float()  # exact: bins hold far fewer than 2^24 / 255 px
    count = ((rows1 - rows0)[:, None] * (cols1 - cols0)[None, :]).float()[None, :, :, None]
    return _written((total / count).permute(0, 3, 1, 2), out)


def _written(level, out):
    """`level` (B,3,rows,cols), also written into `out` (see pyramid_level) when given."""
    if out is not None:
        out[...] = level.permute(0, 2, 3, 1).cpu().numpy()
    return level


def _whole_bins(length, size, device):
    """Area-resampling bins of 0..length into `size` parts: (start, end) index tensors of shape (size,)."""
    start = torch.zeros(1, dtype=torch.long, device=device)
    first, last = _bins(start, start + length, torch.arange(size, device=device), size)
    return first[0], last[0]


_ROWS_PER_BLOCK = 64  # output rows at a time: the integral rows they read stay in the CPU's cache (2x faster)


def _resize_area_numpy(table, height, width, rows, cols, out):
    """resize_area of one frame's (H+1,W+1,3) integral array on the CPU, written into `out` (rows, cols, 3)
    float32."""
    rows0, rows1, cols0, cols1 = _area_bins(table.shape[0] - 1, table.shape[1] - 1, height, width)
    rows0, rows1, cols0, cols1 = rows0[rows], rows1[rows], cols0[cols], cols1[cols]
    row_counts, col_counts = (rows1 - rows0).astype(np.float32), (cols1 - cols0).astype(np.float32)
    # only the integral's columns under the window are copied (a region's window is a sliver of the frame)
    left = cols0[0] if len(cols0) else 0
    table, cols0, cols1 = table[:, left:cols1[-1] + 1 if len(cols1) else 0], cols0 - left, cols1 - left
    for first in range(0, len(rows0), _ROWS_PER_BLOCK):
        block = slice(first, first + _ROWS_PER_BLOCK)
        strip = table[rows1[block]]
        strip -= table[rows0[block]]
        total = np.take(strip, cols1, axis=1)
        total -= np.take(strip, cols0, axis=1)
        part = out[block]
        part[...] = total  # exact in float32: bins hold far fewer than 2^24 / 255 pixels
        part /= np.outer(row_counts[block], col_counts)[:, :, None]


@functools.lru_cache(maxsize=64)
def _area_bins(in_height, in_width, height, width):
    """The row and column bins of an area resize as numpy index arrays (a video repeats its pyramid)."""
    rows0, rows1 = (b.numpy() for b in _whole_bins(in_height, height, "cpu"))
    cols0, cols1 = (b.numpy() for b in _whole_bins(in_width, width, "cpu"))
    return rows0, rows1, cols0, cols1


def crop_resize_area(integral, image, x1, y1, x2, y2, size):
    """Crops [y1:y2, x1:x2] of frames[image] resized to size x size with area averaging (the same bins as
    F.interpolate(mode='area')), all at once from the frames' integral image: (N,3,size,size) float."""
    steps = torch.arange(size, device=integral.device)
    rows0, rows1 = _bins(y1, y2, steps, size)
    cols0, cols1 = _bins(x1, x2, steps, size)
    table_height, table_width = integral.shape[1:3]
    pixels = integral.reshape(-1, integral.shape[3])
    first_row = image[:, None] * table_height

    def at(rows, cols):  # (N*size*size, 3): one gather of whole pixels, 2x faster than indexing 3 dims
        flat = ((first_row + rows) * table_width)[:, :, None] + cols[:, None, :]
        return pixels.index_select(0, flat.view(-1))

    total = at(rows1, cols1) - at(rows0, cols1) - at(rows1, cols0) + at(rows0, cols0)
    count = ((rows1 - rows0)[:, :, None] * (cols1 - cols0)[:, None, :]).view(-1, 1)
    # Sums are whole numbers below 2^24 (bins of up to 65k pixels), so float32 divides them exactly rounded.
    crops = total.float() / count.float()
    return crops.view(len(image), size, size, -1).permute(0, 3, 1, 2)  # a channels-last view


def _bins(lo, hi, steps, size):
    length = (hi - lo)[:, None]
    start = torch.div(steps * length, size, rounding_mode="floor")
    end = torch.div((steps + 1) * length + size - 1, size, rounding_mode="floor")
    return lo[:, None] + start, lo[:, None] + end


def square(boxes):
    """Boxes grown to squares around the same centre (MTCNN's rerec)."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(dim=1, keepdim=True).values
    top_left = boxes[:, 0:2] + wh * 0.5 - side * 0.5
    return torch.cat([top_left, top_left + side], dim=1)


def detect_batch(nets, integral, min_face_size, thresholds, factor, on_stage=None, regions=None):
    """Faces in a batch of frames given by their integral_image: final Candidates with landmarks.
    regions: search only these rectangles (x1, y1, x2, y2) of every frame (see pnet_stage); None: all of it.
    on_stage(name, candidates), if given, sees the candidates fed to RNet ("pnet"), to ONet ("rnet") and
    kept ("onet"). nets: callables (PNet on 0..255 input, i.e. PNet.forward_raw, with its canvas arguments;
    RNet; ONet)."""
    pnet, rnet, onet = nets
    seen = on_stage or (lambda name, candidates: None)
    c = pnet_stage(pnet, integral, min_face_size, factor, thresholds[0], regions)
    seen("pnet", c)
    if len(c):
        c, reg, _ = refine_stage(rnet, integral, c, 24, thresholds[1])
        pick = batched_nms(c.boxes, c.scores, c.image, 0.7)
        c = Candidates(square(regress(c.boxes[pick], reg[pick])), c.scores[pick], c.image[pick])
    seen("rnet", c)
    if len(c):
        c, reg, raw_points = refine_stage(onet, integral, c, 48, thresholds[2])
        c = Candidates(regress(c.boxes, reg), c.scores, c.image, place_landmarks(c.boxes, raw_points))
        c = c.take(batched_nms(c.boxes, c.scores, c.image, 0.7, mode="min"))
    else:
        c.landmarks = c.boxes.new_zeros((0, 5, 2))
    seen("onet", c)
    return c


def _empty(device):
    return Candidates(torch.zeros((0, 4), device=device), torch.zeros(0, device=device),
                      torch.zeros(0, dtype=torch.long, device=device))


def _cat(parts):
    return Candidates(torch.cat([p.boxes for p in parts]), torch.cat([p.scores for p in parts]),
                      torch.cat([p.image for p in parts]))
