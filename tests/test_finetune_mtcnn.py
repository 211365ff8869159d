"""MTCNN fine-tuning (cctv/finetune, finetune_mtcnn.py): samples the cascade can use, training that lowers the
loss, a checkpoint that round-trips through MTCNN(weights_path=...), clear errors."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from cctv.detection_eval import box_iou, evaluate_detector
from cctv.errors import UserError
from cctv.finetune.losses import ohem_cross_entropy, stage_loss
from cctv.finetune.samples import (NEGATIVE, PART, POSITIVE, SamplingConfig, crop_windows, frame_windows,
                                   mine_stage_samples, to_input)
from cctv.finetune.train import (FinetuneSettings, checkpoint, is_better, labeled_frames, split_frames,
                                 train_stage)



@pytest.fixture(scope="module")
def spb_items(shared_dir):
    from cctv.labels import load_labels

    return load_labels(shared_dir / "data/suite_exports/facemask853_spb_download").items


@pytest.fixture(scope="module")
def detector():
    from mtcnn import MTCNN

    return MTCNN(keep_all=True)


def test_windows_get_mtcnn_labels_and_targets_that_the_cascade_inverts():
    from mtcnn.cascade import regress

    faces = np.array([[40, 40, 80, 90], [150, 60, 180, 95]], np.float64)
    candidates = np.array([[42, 45, 82, 85, 0.9], [300, 150, 340, 190, 0.95]])
    rng = np.random.default_rng(0)
    windows, label, target = frame_windows(rng, (240, 360, 3), faces, candidates, "onet", SamplingConfig())
    best_iou = box_iou(windows, faces).max(axis=1)
    assert (best_iou[label == POSITIVE] >= 0.65).all() and (label == POSITIVE).sum() >= 2
    assert ((best_iou[label == PART] >= 0.4) & (best_iou[label == PART] < 0.65)).all()
    assert (best_iou[label == NEGATIVE] < 0.3).all() and (label == NEGATIVE).sum() >= 10
    # the cascade's own candidates are in: the false one as a hard negative, the good one as a positive
    assert any((w == candidates[1, :4]).all() and lab == NEGATIVE for w, lab in zip(windows, label))
    assert any((w == candidates[0, :4]).all() and lab == POSITIVE for w, lab in zip(windows, label))
    # applying the target with the cascade's own regression lands each positive/part window on its face
    use = label != NEGATIVE
    moved = regress(torch.as_tensor(windows[use]), torch.as_tensor(target[use], dtype=torch.float64)).numpy()
    assert box_iou(moved, faces).max(axis=1) == pytest.approx(1.0, abs=1e-5)


def test_crops_are_what_the_cascade_feeds_its_stages():
    from mtcnn.cascade import clip_to_frame, crop_resize_area, integral_image

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    windows = np.array([[10.3, 5.7, 40.2, 35.6], [-8, -8, 30, 30], [100, 60, 130, 90], [50, 20, 58, 28]])
    for size in (12, 24, 48):
        ours = crop_windows(frame, windows, size)
        x1, y1, x2, y2 = clip_to_frame(torch.as_tensor(windows, dtype=torch.float32), 120, 90)
        frames = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
        theirs = crop_resize_area(integral_image(frames), torch.zeros(4, dtype=torch.long), x1, y1, x2, y2, size)
        assert np.abs(ours.astype(float) - theirs.permute(0, 2, 3, 1).numpy()).max() <= 0.5 + 1e-4


def test_ohem_keeps_the_hardest_seventy_percent():
    logits = torch.tensor([[5.0, -5.0], [0.0, 0.0], [-5.0, 5.0], [3.0, -3.0], [0.0, 9.0]])
    labels = torch.tensor([NEGATIVE, POSITIVE, NEGATIVE, POSITIVE, PART])  # the part face is not scored
    per_sample = torch.nn.functional.cross_entropy(logits[:4], torch.tensor([0, 1, 0, 1]), reduction="none")
    hardest = per_sample.sort(descending=True).values[:3]  # round(0.7 * 4) = 3
    assert ohem_cross_entropy(logits, labels, 0.7).item() == pytest.approx(hardest.mean().item())


def test_a_few_iterations_on_ten_labeled_images_lower_the_training_loss(spb_items, detector):
    from mtcnn import load_nets

    _, rnet, _ = load_nets()
    samples = mine_stage_samples(labeled_frames(spb_items[:10]), "rnet", detector, seed=0, progress=False)
    assert samples.counts["positives"] > 20 and samples.counts["negatives"] > 50 and samples.counts["parts"] > 0

    def loss():
        with torch.no_grad():
            out = rnet(to_input(samples.crops))
            return stage_loss(out, torch.from_numpy(samples.label.astype(np.int64)),
                              torch.from_numpy(samples.target)).total.item()

    before = loss()
    history = train_stage(rnet, samples, FinetuneSettings(batch_size=2, num_epochs=3, lr=3e-4), progress=False)
    after = loss()
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    assert after < 0.8 * before


def test_split_is_deterministic_disjoint_and_seeded(spb_items):
    train, val = split_frames(spb_items, 0.2, seed=0)
    again_train, again_val = split_frames(list(reversed(spb_items)), 0.2, seed=0)
    assert len(val) == 6 and len(train) == 24
    assert {i.key for i in val} == {i.key for i in again_val}
    assert not {i.key for i in train} & {i.key for i in val}
    assert {i.key for i in split_frames(spb_items, 0.2, seed=1)[1]} != {i.key for i in val}
    with pytest.raises(UserError):
        split_frames(spb_items[:1], 0.2)


def test_better_means_higher_ap_and_no_more_false_detections():
    from cctv.detection_eval import DetectionMetrics

    def m(ap, fpf):
        return DetectionMetrics(ap50=ap, recall=0.8, precision=0.9, false_per_frame=fpf)

    assert is_better(m(0.80, 0.20), m(0.85, 0.20))[0]
    assert not is_better(m(0.80, 0.20), m(0.85, 0.25))[0]
    assert not is_better(m(0.80, 0.20), m(0.80, 0.10))[0]


def test_checkpoint_loads_weights_only_and_through_mtcnn_with_the_same_outputs(tmp_path, spb_items, detector):
    from cctv.atomic import save_torch
    from cctv.images import load_image
    from mtcnn import MTCNN

    tuned = MTCNN(keep_all=True)
    with torch.no_grad():  # a visible change to every stage, as fine-tuning makes
        for net in (tuned.pnet, tuned.rnet, tuned.onet):
            for p in net.parameters():
                p.mul_(1.02)
    path = tmp_path / "tuned.pt"
    save_torch(checkpoint(tuned, {"evaluation": {"before": {"ap50": 0.5}}}), path)
    state = torch.load(path, weights_only=True)
    assert state["meta"]["evaluation"]["before"]["ap50"] == 0.5
    loaded = MTCNN(keep_all=True, weights_path=path)
    image = load_image(spb_items[0].image_path)
    boxes, probs = loaded.detect(image)
    want_boxes, want_probs = tuned.detect(image)
    base_boxes, _ = detector.detect(image)
    assert len(boxes) > 0 and np.array_equal(boxes, want_boxes) and np.array_equal(probs, want_probs)
    assert len(base_boxes) != len(boxes) or not np.array_equal(base_boxes, boxes)


def _coco_of(items, path):
    """A COCO label file for a few labeled frames (the images stay where they are, in ../shared)."""
    import json

    images, annotations = [], []
    for i, item in enumerate(items):
        images.append({"id": i, "file_name": item.image_path.name, "width": item.width, "height": item.height})
        for box, cls in zip(item.boxes.tolist(), item.classes):
            annotations.append({"id": len(annotations), "image_id": i, "category_id": 1 if cls == "protected" else 2,
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "protected"}, {"id": 2, "name": "unprotected"}]}))
    return path


def test_finetune_run_writes_a_checkpoint_holding_its_own_evaluation(tmp_path, spb_items):
    from cctv.finetune import run_finetune
    from cctv.labels import load_labels
    from mtcnn import MTCNN

    labels = _coco_of(spb_items[:8], tmp_path / "labels.json")
    out = tmp_path / "models" / "mtcnn.pt"
    result = run_finetune(labels_dir=labels, images_dir=spb_items[0].image_path.parent, mtcnn_model_output_path=out,
                          num_epochs=1, stages="onet", val_fraction=0.25, force=True, progress=False)
    assert result.written == out and out.is_file()
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["stages_trained"] == ["onet"] and meta["data"]["val_frames"] == 2
    assert meta["evaluation"]["after"]["ap50"] == pytest.approx(result.after.ap50)
    assert set(meta["evaluation"]["after"]["recall_per_class"]) <= {"protected", "unprotected"}
    # the file's weights give the "after" numbers again on the same validation frames
    _, val = split_frames(load_labels(labels, images_dir=spb_items[0].image_path.parent).items, 0.25, seed=0)
    again, _ = evaluate_detector(MTCNN(keep_all=True, weights_path=out).detect, val, min_size=20, progress=False)
    assert again.as_dict() == meta["evaluation"]["after"]


def _script(*args, cwd):
    return subprocess.run([sys.executable, "finetune_mtcnn.py", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_labels_without_their_images_give_one_clear_error(tmp_path, shared_dir, repo_root):
    export = shared_dir / "data/suite_exports/facemask853_2020_format"
    (tmp_path / "images").mkdir()
    r = _script(f"--metadata_dir={export}/meta/cctv-mask-detector-live-data", f"--labels_dir={export}/labels",
                f"--images_dir={tmp_path / 'images'}", f"--mtcnn_model_output_path={tmp_path / 'out.pt'}",
                cwd=repo_root)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert "image" in r.stderr.lower()
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("flag, value", [("stages", "rnet,bnet"), ("thresholds", "0.6,0.7"), ("val_fraction", 1.5),
                                         ("batch_size", 0), ("device", "cuda:7")])
def test_bad_settings_are_user_errors_naming_the_flag(tmp_path, flag, value):
    from cctv.finetune import run_finetune

    if flag == "device" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(UserError, match=f"--{flag}"):
        run_finetune(labels_dir=tmp_path, mtcnn_model_output_path=tmp_path / "o.pt", progress=False, **{flag: value})
