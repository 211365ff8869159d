"""The CCTV models' parts: pyramid levels that enlarge the frame for faces under 12 px, the augmentation that
makes photos look like ceiling-camera frames, the footage face-centre labels and their scoring, the
side-by-side evaluation command, and the classifier/MTCNN pairing of the main job."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from cctv import cctv_augment as aug
from cctv.detection_eval import box_iou


@pytest.fixture(scope="module")
def multiface(shared_dir):
    from cctv.images import load_image
    from mtcnn import MTCNN

    image = load_image(shared_dir / "data" / "multiface.jpg")
    reference, _ = MTCNN(keep_all=True).detect(image)
    return image, reference


def test_enlarged_pyramid_levels_find_faces_under_12_px_that_were_missed(multiface):
    from mtcnn import MTCNN

    image, reference = multiface
    small = cv2.resize(image, None, fx=0.1, fy=0.1, interpolation=cv2.INTER_AREA)  # faces of 7-9 px
    faces = reference * 0.1
    assert (faces[:, 2] - faces[:, 0]).max() < 10

    def found(min_face_size):
        boxes, _ = MTCNN(keep_all=True, min_face_size=min_face_size).detect(small)
        return int((box_iou(faces, boxes).max(axis=1) >= 0.4).sum()) if len(boxes) else 0

    # 12 px is the smallest min_face_size whose pyramid never enlarges the frame
    assert found(6) >= found(12) + 2


def test_enlarged_levels_are_bilinear_and_the_same_on_the_tensor_path(multiface):
    from mtcnn.cascade import _enlarge_torch, _integral_torch, integral_image, pyramid_level

    image = np.ascontiguousarray(multiface[0][:120, :200])
    cpu = pyramid_level(integral_image(image[None]), 150, 250, 1.25)
    expected = cv2.resize(image.astype(np.float32), (250, 150), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(cpu[0].permute(1, 2, 0).numpy(), expected, atol=1e-3)
    # what a GPU runs (the same tensor ops, here on the CPU)
    up = _enlarge_torch(_integral_torch(torch.from_numpy(image[None]).permute(0, 3, 1, 2)), 150, 250)
    np.testing.assert_allclose(up[0].permute(1, 2, 0).numpy(), expected, atol=1e-3)


def test_scale_one_keeps_area_levels(multiface):
    """min_face_size 12 gives scale 1 (one extra row and column, as MTCNN always had): not bilinear."""
    from mtcnn.cascade import integral_image, pyramid_level, resize_area

    image = np.ascontiguousarray(multiface[0][:60, :80])
    table = integral_image(image[None])
    assert torch.equal(pyramid_level(table, 61, 81, 1.0), resize_area(table, 61, 81))


@pytest.fixture(scope="module")
def labeled_photo(shared_dir):
    from cctv.images import load_image
    from cctv.labels import load_labels

    items = load_labels(shared_dir / "data/suite_exports/facemask853_spb_download").items
    item = max(items, key=lambda i: len(i.boxes))
    return load_image(item.image_path), np.asarray(item.boxes, np.float32)


def test_downscale_brings_the_median_face_into_the_cctv_range(labeled_photo):
    image, boxes = labeled_photo
    for seed in range(5):
        out, moved = aug.downscale_faces(image, boxes, np.random.default_rng(seed), (10, 30))
        median = np.median(moved[:, 2] - moved[:, 0])
        if np.median(boxes[:, 2] - boxes[:, 0]) > 30:
            assert 9.5 <= median <= 30.5
        scale = out.shape[1] / image.shape[1]
        np.testing.assert_allclose(moved, boxes * scale, rtol=0.02)
        assert out.dtype == np.uint8 and out.shape[2] == 3


def test_top_down_squashes_frame_and_boxes_alike(labeled_photo):
    image, boxes = labeled_photo
    out, moved = aug.top_down(image, boxes, np.random.default_rng(0))
    squash = out.shape[0] / image.shape[0]
    assert 0.74 <= squash <= 0.96 and out.shape[1] == image.shape[1]
    np.testing.assert_allclose(moved[:, [1, 3]], boxes[:, [1, 3]] * squash, rtol=1e-5)
    np.testing.assert_array_equal(moved[:, [0, 2]], boxes[:, [0, 2]])


def test_cap_darkens_the_top_of_faces_not_the_chin(labeled_photo):
    image, boxes = labeled_photo
    big = boxes[np.argmax(boxes[:, 2] - boxes[:, 0])][None]
    out = aug.cap_over_forehead(image, big, np.random.default_rng(0), share=1.0)
    x1, y1, x2, y2 = big[0].astype(int)
    h = y2 - y1
    top = (slice(y1, y1 + max(1, h // 6)), slice(x1 + (x2 - x1) // 3, x2 - (x2 - x1) // 3))
    chin = (slice(y2 - h // 4, y2), slice(x1, x2))
    assert out[top].mean() < 75 and out[top].mean() < image[top].mean()
    np.testing.assert_array_equal(out[chin], image[chin])


def test_pixel_steps_keep_shape_type_and_range(labeled_photo):
    image, _ = labeled_photo
    rng = np.random.default_rng(3)
    for step in (aug.blur, aug.light, aug.noise, aug.jpeg, aug.gif_palette, aug.grayscale):
        out = step(image, rng)
        assert out.shape == image.shape and out.dtype == np.uint8
    grey = aug.grayscale(image)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert len(np.unique(aug.gif_palette(image).reshape(-1, 3), axis=0)) <= 256
    assert aug.light(image, np.random.default_rng(1)).mean() != image.mean()


def test_cctvify_is_deterministic_with_a_seed_and_keeps_boxes_inside(labeled_photo):
    image, boxes = labeled_photo
    a = aug.cctvify(image, boxes, np.random.default_rng(7))
    b = aug.cctvify(image, boxes, np.random.default_rng(7))
    c = aug.cctvify(image, boxes, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape != c[0].shape or not np.array_equal(a[0], c[0])
    h, w = a[0].shape[:2]
    assert (a[1][:, [0, 2]] <= w + 1).all() and (a[1][:, [1, 3]] <= h + 1).all() and (a[1] >= -1).all()


def test_footage_labels_cover_every_frame_and_score_detections(repo_root):
    from cctv.footage_eval import load_footage_labels, score_footage

    labels = load_footage_labels(repo_root / "benchmarks/data/footage_faces/channy_in.json")
    assert labels.frames == list(range(20)) and all(len(f) == 1 and f[0]["mask"] for f in labels.faces.values())
    face = labels.faces[0][0]
    on_face = np.array([[face["x"] - 9, face["y"] - 9, face["x"] + 9, face["y"] + 9]], np.float32)
    elsewhere = on_face + 100
    detections = [np.concatenate([on_face, elsewhere])] + [np.zeros((0, 4))] * 19
    protected = [np.array([True, False])] + [np.zeros(0, bool)] * 19
    s = score_footage(labels, detections, protected)
    assert (s.found, s.labeled, s.protected_found, s.found_frames) == (1, 20, 1, [0])
    assert s.other_per_frame == pytest.approx(1 / 20)
    out = json.loads((repo_root / "benchmarks/data/footage_faces/channy_out.json").read_text())
    assert sorted(map(int, out["frames"])) == list(range(17))


def test_evaluate_models_prints_the_side_by_side_table(shared_dir, repo_root, tmp_path):
    export = shared_dir / "data/suite_exports/facemask853_spb_download"
    r = subprocess.run([sys.executable, "evaluate_models.py", "--labels_dir", str(export),
                        "--mtcnn_model_path", "models/finetuned_mtcnn.pt", "--threads", "1"],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert all(k in lines[head] for k in ("AP@0.5", "masked", "unmasked", "false/frame"))
    rows = lines[head + 2:]
    assert rows[0].startswith("pretrained") and any(r.startswith("given (finetuned_mtcnn.pt)") for r in rows)
    for band in ("<15", "15-25", "25-40", ">40"):
        assert sum(f" {band} " in r for r in rows) >= 2
    ap = float(rows[0].split()[2])
    assert 0 < ap <= 100

    bad = subprocess.run([sys.executable, "evaluate_models.py", "--labels_dir", str(tmp_path / "nothing")],
                         cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_cctv_classifier_brings_its_mtcnn_and_settings_to_the_main_job(repo_root, tmp_path):
    import shutil

    import torch

    from cctv.errors import UserError
    from cctv.pipeline import MaskPipeline

    pipeline = MaskPipeline.load(repo_root / "models/cctv_classifier.pt")
    detector = pipeline.detector
    assert detector.weights_path == str(repo_root / "models/cctv_mtcnn.pt")
    recorded = torch.load(repo_root / "models/cctv_mtcnn.pt", weights_only=True)["meta"]["settings"]
    assert detector.min_face_size == recorded["min_face_size"] == 10
    assert list(detector.thresholds) == list(recorded["thresholds"])
    assert pipeline.image_size == 64
    # without its MTCNN beside it: one clear error, not the pretrained weights at the CCTV settings
    shutil.copy(repo_root / "models/cctv_classifier.pt", tmp_path / "cctv_classifier.pt")
    with pytest.raises(UserError, match="cctv_mtcnn.pt"):
        MaskPipeline.load(tmp_path / "cctv_classifier.pt")


@pytest.mark.slow
def test_cctv_detector_finds_the_entrance_face_more_often_than_the_pretrained(shared_dir, repo_root):
    """Evaluation footage (never trained on): a cheap check of the benchmark's headline."""
    from cctv.footage_eval import load_footage_labels, read_clip, score_footage
    from mtcnn import MTCNN

    labels = load_footage_labels(repo_root / "benchmarks/data/footage_faces/channy_in.json")
    frames = read_clip(shared_dir / "data/footage/channy_in.gif")
    pretrained = MTCNN(keep_all=True)
    cctv = MTCNN(keep_all=True, min_face_size=10, weights_path=str(repo_root / "models/cctv_mtcnn.pt"))
    before = score_footage(labels, [pretrained.detect(f)[0] for f in frames])
    after = score_footage(labels, [cctv.detect(f)[0] for f in frames])
    assert after.found >= before.found + 4 and after.other_per_frame <= 0.2


def test_a_finished_model_refined_without_its_first_pass_windows_still_trains_on_faces(shared_dir, repo_root,
                                                                                         tmp_path):
    """train_cctv_models.py --resume_mtcnn models/cctv_mtcnn.pt --refine rnet=N: the first pass's windows are
    gone, so the faces' own windows are mined beside the cascade's candidates (a stage trained on hard
    negatives alone would learn to reject everything), cached, and reused on the next run."""
    from cctv.cctv_training import FrameSource, cctv_sampling, load_sources, refine_with_trained_cascade
    from cctv.finetune.train import FinetuneSettings
    from mtcnn import MTCNN

    items = load_sources(shared_dir)["facemask853"][0][:4]
    detector = MTCNN(min_face_size=12, keep_all=True, weights_path=repo_root / "models/cctv_mtcnn.pt")
    before = {k: v.clone() for k, v in detector.rnet.state_dict().items()}
    settings = FinetuneSettings(stages=("rnet",), batch_size=2, lr=1e-4, num_epochs=1, seed=0,
                                sampling=cctv_sampling(), frozen=())
    counts, history = refine_with_trained_cascade(detector, FrameSource(items, cctv_share=0.0), "rnet", settings,
                                                  tmp_path, tag="refined", progress=False, log=lambda *_: None)
    assert counts["positives"] >= len(items) and counts["negatives"] > counts["positives"]
    assert len(history) == 1 and history[0]["loss"] > 0
    assert any(not torch.equal(before[k], v) for k, v in detector.rnet.state_dict().items())
    # the mined windows are cached: a rerun with no frames to mine trains on the same windows
    again, _ = refine_with_trained_cascade(detector, FrameSource([], cctv_share=0.0), "rnet", settings, tmp_path,
                                           tag="refined", progress=False, log=lambda *_: None)
    assert again == counts and (tmp_path / "rnet_refined.npz").is_file()
