"""--blur_faces: which faces are pixelated, and only they."""
import numpy as np
import pytest

from cctv.privacy import enlarged_box, faces_to_blur, pixelate_faces


def test_modes_choose_the_faces_to_blur():
    p = np.array([0.9, 0.2, 0.7])  # protected, unprotected, protected
    assert faces_to_blur("none", p).tolist() == [False, False, False]
    assert faces_to_blur("all", p).tolist() == [True, True, True]
    assert faces_to_blur("others", p).tolist() == [True, False, True]  # without tracking: the unprotected stay
    ids = np.array([3, 7, 9])
    assert faces_to_blur("others", p, track_ids=ids, keep_track_ids=[9]).tolist() == [True, True, False]
    with pytest.raises(ValueError):
        faces_to_blur("some", p)


def test_only_the_enlarged_face_box_is_pixelated():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    original = frame.copy()
    pixelate_faces(frame, [[100, 50, 150, 110]])
    x1, y1, x2, y2 = enlarged_box([100, 50, 150, 110], 300, 200)
    assert (x1, y1, x2, y2) == (90, 38, 160, 122)
    changed = np.argwhere((frame != original).any(axis=2))
    assert changed[:, 0].min() >= y1 and changed[:, 0].max() < y2 and changed[:, 1].min() >= x1 and changed[:, 1].max() < x2
    region = frame[y1:y2, x1:x2].reshape(-1, 3)
    assert len(np.unique(region, axis=0)) <= 4 * 5  # a few flat blocks, not the face's detail
    pixelate_faces(frame, [[-20, -20, 10, 10], [295, 195, 330, 230]])  # boxes past the frame's edges: clipped


def test_a_face_crop_is_pixelated_whole():
    from cctv.privacy import pixelate_image

    crop = np.random.default_rng(1).integers(0, 256, (60, 48, 3), dtype=np.uint8)
    assert len(np.unique(pixelate_image(crop).reshape(-1, 3), axis=0)) <= 4 * 5
