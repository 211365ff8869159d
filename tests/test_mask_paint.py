"""Masks painted on unmasked faces for the CCTV classifier (cctv/mask_paint.py): where the mask goes, its
colours, and that only painted faces change class."""
import numpy as np
import pytest

from cctv import mask_paint


@pytest.fixture(scope="module")
def photo(shared_dir):
    """A labeled facemask853 photo with both classes, its boxes and protected flags."""
    from cctv.images import load_image
    from cctv.labels import load_labels

    items = load_labels(shared_dir / "data/suite_exports/facemask853_spb_download").items
    mixed = [i for i in items if {"protected", "unprotected"} <= set(i.classes)]
    item = max(mixed, key=lambda i: len(i.boxes))
    return (load_image(item.image_path), np.asarray(item.boxes, np.float32),
            np.array([c == "protected" for c in item.classes]), items)


def test_the_mask_covers_the_lower_face_and_nothing_far_from_it():
    image = np.full((200, 200, 3), 128, np.uint8)
    x1, y1, x2, y2 = box = np.array([60, 40, 140, 140], np.float32)  # 80 x 100 face
    for seed in range(20):
        out, region = mask_paint.paint_mask(image, box, np.random.default_rng(seed))
        ys, xs = np.nonzero(region)
        assert ys.min() >= y1 + 0.3 * (y2 - y1) and ys.max() <= y2 + 0.15 * (y2 - y1)  # nose to chin
        assert xs.min() >= x1 - 0.15 * (x2 - x1) and xs.max() <= x2 + 0.15 * (x2 - x1)  # cheek to cheek
        assert region[int(y1 + 0.8 * (y2 - y1)), int((x1 + x2) / 2)]  # the mouth is always covered
        assert not region[int(y1 + 0.2 * (y2 - y1)), int((x1 + x2) / 2)]  # the eyes never
        assert region.sum() >= 0.35 * 0.5 * (x2 - x1) * (y2 - y1)  # most of the lower half
        lower_face = out[int(y1 + 0.6 * (y2 - y1)):int(y2), int(x1 + 0.3 * (x2 - x1)):int(x2 - 0.3 * (x2 - x1))]
        assert np.abs(lower_face.astype(int) - 128).mean() > 3 or lower_face.std() > 1  # painted, not grey
        np.testing.assert_array_equal(out[:, :30], image[:, :30])  # far from the face: untouched
        np.testing.assert_array_equal(out[:10], image[:10])


def test_masks_are_mostly_dark_also_light_and_never_a_flat_fill():
    image = np.full((120, 120, 3), 128, np.uint8)
    box = np.array([20, 10, 100, 110], np.float32)
    means, spreads = [], []
    for seed in range(200):
        out, region = mask_paint.paint_mask(image, box, np.random.default_rng(seed))
        inside = out[region].astype(np.float32)
        means.append(inside.mean())
        spreads.append(inside.std(axis=0).mean())
    means = np.array(means)
    assert 0.45 <= (means < 70).mean() <= 0.8  # black, navy, dark grey
    assert (means > 170).mean() >= 0.1  # white, surgical blue
    assert min(spreads) > 1.5  # shading and noise on every mask


def test_a_tiny_face_at_the_frame_edge_gets_a_mask_inside_the_frame():
    image = np.full((40, 40, 3), 200, np.uint8)
    out, region = mask_paint.paint_mask(image, np.array([30, 28, 44, 45], np.float32), np.random.default_rng(0))
    assert out.shape == image.shape and region.shape == image.shape[:2] and region.any()


def test_only_unprotected_faces_are_painted_and_the_others_stay_as_they_are(photo):
    image, boxes, protected, _ = photo
    out, painted = mask_paint.paint_masks(image, boxes, protected, np.random.default_rng(0), share=1.0)
    np.testing.assert_array_equal(painted, ~protected)
    changed = np.any(out != image, axis=2)
    for box, was_painted in zip(boxes.astype(int), painted):
        x1, y1, x2, y2 = box
        lower = changed[y1 + (y2 - y1) * 2 // 3:y2, x1 + (x2 - x1) // 3:x2 - (x2 - x1) // 3]
        if was_painted:
            assert lower.mean() > 0.5
    some = mask_paint.paint_masks(image, boxes, protected, np.random.default_rng(1), share=0.5)[1]
    assert not (some & protected).any()


def test_painted_training_faces_are_the_unprotected_ones_labeled_protected(photo):
    from cctv.cctv_models import labeled_face_crops

    *_, items = photo
    items = items[:12]
    plain = labeled_face_crops(items, versions=1, cctv_share=0.0, progress=False)
    painted = labeled_face_crops(items, cctv_share=0.0, progress=False, painted=1.0)
    unprotected = plain.crops[plain.labels == 0]
    assert len(painted) == len(unprotected) > 0 and (painted.labels == 1).all()
    # the same faces, changed in their lower part (crop rows 60-100%), less in their upper part
    lower = np.abs(painted.crops[:, 40:].astype(int) - unprotected[:, 40:]).mean()
    upper = np.abs(painted.crops[:, :20].astype(int) - unprotected[:, :20]).mean()
    assert lower > 20 and lower > 3 * upper
    # the labeled classes of the plain crops are the labels' own
    expected = [c == "protected" for i in items for c, b in zip(i.classes, i.boxes)
                if min(b[2] - b[0], b[3] - b[1]) >= 10]
    np.testing.assert_array_equal(plain.labels, expected)
