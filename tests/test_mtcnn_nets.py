"""The detection-time shortcuts of the nets (folded and padded weights, strided max-pooling, bands of rows,
chunks of crops) give the plain layers' numbers, on a real frame at sizes that take every branch."""
import pytest
import torch
import torch.nn.functional as F

from cctv.images import load_image
from mtcnn.cascade import integral_image, resize_area, standardise
from mtcnn.nets import PNET_BAND_ROWS, in_chunks, load_nets, max_pool_2x2


@pytest.fixture(scope="module")
def nets():
    return tuple(net.to(memory_format=torch.channels_last) for net in load_nets())


@pytest.fixture(scope="module")
def group_photo_integral(shared_dir):
    return integral_image(load_image(shared_dir / "data" / "multiface.jpg")[None])


@pytest.mark.parametrize("height,width", [(1, 1), (2, 3), (5, 8), (6, 7), (9, 9), (22, 22), (23, 24)])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_strided_max_pool_equals_max_pool2d_with_ceil_mode(height, width, layout):
    x = torch.randn(2, 16, height, width).contiguous(memory_format=layout)
    pooled = max_pool_2x2(x)
    assert torch.equal(pooled, F.max_pool2d(x, 2, 2, ceil_mode=True))
    assert pooled.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.1])  # bands of rows at 1.0 and 0.5, one piece at 0.1
def test_pnet_detection_path_equals_the_plain_layers(nets, group_photo_integral, scale):
    pnet = nets[0]
    h, w = (int(s * scale) for s in group_photo_integral.shape[1:3])
    level = resize_area(group_photo_integral, h, w).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        reg, logits = pnet(standardise(level))
        fast_reg, fast_logits = pnet.forward_raw(level)
    assert (scale < 0.5) == ((h - 1) // 2 <= PNET_BAND_ROWS)  # the sizes take both branches
    torch.testing.assert_close(fast_reg, reg, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast_logits, logits, atol=1e-4, rtol=0)


def test_pnet_detection_weights_follow_in_place_training(nets):
    pnet = load_nets()[0]
    x = torch.rand(1, 3, 40, 40) * 255
    with torch.no_grad():
        before = pnet.forward_raw(x)[1]
        pnet.conv1.bias.add_(1.0)  # as an optimizer step does
        after = pnet.forward_raw(x)[1]
        torch.testing.assert_close(after, pnet(standardise(x))[1], atol=1e-4, rtol=0)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("stage,size,count", [(1, 24, 150), (2, 48, 40)])
def test_rnet_and_onet_in_chunks_equal_one_call(nets, stage, size, count):
    crops = standardise(torch.rand(count, 3, size, size) * 255).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        whole = nets[stage](crops)
        chunked = in_chunks(nets[stage], crops)
    assert len(chunked) == len(whole)
    for ours, theirs in zip(chunked, whole):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
