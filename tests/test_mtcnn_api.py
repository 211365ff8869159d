"""facenet-pytorch's MTCNN API on our detector: inputs, result shapes, batches, checkpoints, bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from cctv.errors import UserError
from cctv.images import load_image
from mtcnn import MTCNN, MTCNNWeightsError, crop_faces


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNN(keep_all=True, select_largest=False)


@pytest.fixture(scope="module")
def group_photo(shared_dir):
    return load_image(shared_dir / "data" / "multiface.jpg")


def test_detect_finds_the_six_faces_with_landmarks_inside_boxes(mtcnn, group_photo):
    boxes, probs, points = mtcnn.detect(group_photo, landmarks=True)
    assert boxes.shape == (6, 4) and probs.shape == (6,) and points.shape == (6, 5, 2)
    assert (probs > 0.99).all() and (np.diff(probs) <= 0).all()  # most probable first
    inside = ((points >= boxes[:, None, :2] - 2) & (points <= boxes[:, None, 2:] + 2)).all()
    assert inside


def test_pil_array_and_batch_inputs_agree(mtcnn, group_photo):
    b_arr, p_arr = mtcnn.detect(group_photo)
    b_pil, _ = mtcnn.detect(Image.fromarray(group_photo))
    b_batch, p_batch = mtcnn.detect(np.stack([group_photo, group_photo[:, ::-1].copy()]))
    b_list, _ = mtcnn.detect([group_photo, group_photo[:300, :300].copy()])
    np.testing.assert_allclose(b_pil, b_arr, atol=1e-3)
    assert isinstance(b_batch, list) and len(b_batch) == 2
    np.testing.assert_allclose(b_batch[0], b_arr, atol=1e-2)
    np.testing.assert_allclose(p_batch[0], p_arr, atol=1e-5)
    assert len(b_batch[1]) >= 6  # the mirrored photo shows the same six faces
    np.testing.assert_allclose(b_list[0], b_arr, atol=1e-2)


def test_detect_runs_in_ieee_fp32_and_leaves_the_callers_precision_alone(mtcnn, group_photo, monkeypatch):
    """TF32 on a GPU moves 1 box in 10 (parity 0.89): detect() forces IEEE fp32, then restores the caller's."""
    from mtcnn import detector

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    seen = []
    real = detector.detect_batch
    monkeypatch.setattr(detector, "detect_batch",
                        lambda *a, **k: seen.append((conv.fp32_precision, matmul.fp32_precision)) or real(*a, **k))
    boxes, _ = mtcnn.detect(group_photo)
    assert len(boxes) == 6 and seen == [("ieee", "ieee")]
    assert (conv.fp32_precision, matmul.fp32_precision) == before


def test_no_face_gives_empty_arrays_never_none(mtcnn):
    blank = np.full((120, 160, 3), 128, np.uint8)
    boxes, probs, points = mtcnn.detect(blank, landmarks=True)
    assert boxes.shape == (0, 4) and probs.shape == (0,) and points.shape == (0, 5, 2)
    tiny = np.zeros((8, 10, 3), np.uint8)  # smaller than PNet's 12-px window
    assert mtcnn.detect(tiny)[0].shape == (0, 4)
    assert mtcnn(blank).shape == (0, 3, 160, 160)


def test_grayscale_rgba_and_16_bit_are_converted(mtcnn, group_photo):
    gray = Image.fromarray(group_photo).convert("L")
    rgba = Image.fromarray(group_photo).convert("RGBA")
    deep = (np.asarray(gray).astype(np.uint16) * 257)
    assert len(mtcnn.detect(gray)[0]) >= 5
    assert len(mtcnn.detect(rgba)[0]) == 6
    assert len(mtcnn.detect(deep)[0]) >= 5


def test_crops_are_standardised_faces(mtcnn, group_photo):
    faces = mtcnn(group_photo)
    assert faces.shape == (6, 3, 160, 160)
    assert faces.min() >= -1.0 and faces.max() <= 1.0
    raw = crop_faces(group_photo, mtcnn.detect(group_photo)[0], 160, 0)
    np.testing.assert_allclose(faces.numpy(), (raw.transpose(0, 3, 1, 2) - 127.5) / 128, atol=1e-6)
    first = MTCNN(keep_all=False, select_largest=True)(group_photo)
    assert first.shape == (1, 3, 160, 160)


def test_finetuned_checkpoint_loads_and_changes_answers(tmp_path, mtcnn, group_photo):
    state = {f"{name}.{k}": v.clone() for name, net in (("pnet", mtcnn.pnet), ("rnet", mtcnn.rnet),
                                                        ("onet", mtcnn.onet)) for k, v in net.state_dict().items()}
    same = tmp_path / "same.pt"
    torch.save(state, same)
    np.testing.assert_allclose(MTCNN(keep_all=True, select_largest=False, weights_path=same).detect(group_photo)[0],
                               mtcnn.detect(group_photo)[0], atol=1e-4)
    state["onet.dense6_1.bias"] = torch.tensor([10.0, -10.0])  # ONet now calls everything a non-face
    silenced = tmp_path / "silenced.pt"
    torch.save(state, silenced)
    assert MTCNN(weights_path=silenced).detect(group_photo)[0].shape == (0, 4)


def test_bad_checkpoints_and_images_name_the_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(MTCNNWeightsError, match="junk.pt"):  # mtcnn's own error; cctv shows it as one line
        MTCNN(weights_path=junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(MTCNNWeightsError, match="not an MTCNN checkpoint"):
        MTCNN(weights_path=foreign)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(UserError, match="broken.jpg"):
        load_image(broken)

