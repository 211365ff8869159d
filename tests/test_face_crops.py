"""The one-time face-detection pass over a class-folder dataset: faces found on a downscaled copy of big photos,
crops cut at full resolution, and only images not cached yet detected (with their own progress line)."""
import shutil

import cv2
import numpy as np

from cctv.classifier import DEFAULT_MTCNN_SETTINGS
from cctv.detection_eval import box_iou
from cctv.face_dataset import face_crops_from_folder, largest_face_crop, make_mtcnn


def test_big_photo_is_detected_downscaled_and_cropped_at_full_resolution(shared_dir, monkeypatch):
    from mtcnn import crop_faces

    img = cv2.cvtColor(cv2.imread(str(shared_dir / "data/mask_classification/without_mask/0.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # e.g. 1712 x 1400: a camera photo
    mtcnn = make_mtcnn(DEFAULT_MTCNN_SETTINGS)
    seen = []
    detect = mtcnn.detect

    def spy(x):
        seen.append((x.shape, detect(x)[0]))
        return detect(x)

    monkeypatch.setattr(mtcnn, "detect", spy)
    crop, found = largest_face_crop(mtcnn, big, 160, 0, max_side=1024)
    shape, boxes = seen[-1]
    assert found and max(shape[:2]) == 1024  # detection ran on the small copy
    box = boxes[:1] * max(big.shape[:2]) / 1024
    # cut from the big image (not the small copy), around the face found on the original image
    np.testing.assert_array_equal(crop, crop_faces(big, box, 160, 0)[0])
    assert box_iou(box, detect(img)[0][:1] * 4)[0, 0] > 0.85
    assert largest_face_crop(mtcnn, img, 160, 0, max_side=1024)[1]  # small images: unchanged path


def test_only_new_images_are_detected_and_the_pass_says_so(shared_dir, tmp_path, capsys):
    root = tmp_path / "data"
    for cls, folder in (("with_mask", "protected"), ("without_mask", "unprotected")):
        (root / folder).mkdir(parents=True)
        for f in sorted((shared_dir / "data/mask_classification" / cls).glob("*.jpg"))[:2]:
            shutil.copyfile(f, root / folder / f.name)
    first = face_crops_from_folder(root, cache_dir=tmp_path / "cache", progress=False)
    assert f"{root}: detecting faces in 4 new images, once (0 already cached in" in capsys.readouterr().out
    extra = sorted((shared_dir / "data/mask_classification/with_mask").glob("*.jpg"))[5]
    shutil.copyfile(extra, root / "protected" / extra.name)
    second = face_crops_from_folder(root, cache_dir=tmp_path / "cache", progress=False)
    assert "detecting faces in 1 new images, once (4 already cached" in capsys.readouterr().out
    face_crops_from_folder(root, cache_dir=tmp_path / "cache", progress=False)
    assert "detecting" not in capsys.readouterr().out
    assert len(first) == 4 and len(second) == 5 and second.names[:2] == first.names[:2]
    np.testing.assert_array_equal(second.crops[:2], first.crops[:2])
