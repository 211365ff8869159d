"""Detection metrics: AP@0.5, recall, false detections per frame, recall per class (cctv/detection_eval.py)."""
import numpy as np
import pytest

from cctv.detection_eval import (FALSE_POSITIVE, IGNORED, TRUE_POSITIVE, average_precision, box_iou, evaluate,
                                 evaluate_detector, format_table, match_frame)

FACE_A = [10, 10, 50, 50]
FACE_B = [100, 10, 140, 50]


def test_box_iou_on_hand_made_boxes():
    iou = box_iou([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], [[0, 0, 10, 10]])
    assert iou[:, 0] == pytest.approx([1.0, 50 / 150, 0.0])


def test_ap_of_a_ranked_list_with_a_false_detection_in_the_middle():
    # two faces; ranked detections: hit, false, hit -> precision 1 at recall 0.5, 2/3 at recall 1.
    truths = [(np.array([FACE_A, FACE_B], np.float32), ["protected", "unprotected"])]
    dets = (np.array([FACE_A, [200, 200, 240, 240], FACE_B], np.float32), np.array([0.9, 0.8, 0.7]))
    m = evaluate([dets], truths)
    assert m.ap50 == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert m.recall == 1.0 and m.precision == pytest.approx(2 / 3)
    assert m.false_per_frame == 1.0


def test_ap_when_the_false_detection_ranks_first_and_a_face_is_missed():
    truths = [(np.array([FACE_A, FACE_B], np.float32), ["protected", "protected"])]
    dets = (np.array([[200, 200, 240, 240], FACE_A], np.float32), np.array([0.95, 0.6]))
    m = evaluate([dets], truths)
    assert m.ap50 == pytest.approx(0.5 * 0.5)  # recall reaches 0.5 at precision 1/2, never 1
    assert m.recall == 0.5


def test_a_second_box_on_the_same_face_is_a_false_detection_and_iou_below_half_misses():
    shifted = [30, 10, 70, 50]  # IoU with FACE_A = 20*40 / (2*1600 - 800) = 1/3
    m = match_frame([FACE_A, [11, 11, 51, 51], shifted], [0.9, 0.8, 0.99], [FACE_A])
    assert list(m.outcome) == [TRUE_POSITIVE, FALSE_POSITIVE, FALSE_POSITIVE]
    assert m.gt_found.tolist() == [True]


def test_the_most_confident_detection_takes_the_face():
    m = match_frame([[12, 12, 52, 52], FACE_A], [0.5, 0.9], [FACE_A])
    assert list(m.outcome) == [FALSE_POSITIVE, TRUE_POSITIVE]


def test_faces_under_min_size_are_neither_missed_nor_false_detections():
    tiny = [200, 200, 212, 215]  # short side 12 px
    truths = [(np.array([FACE_A, tiny], np.float32), ["protected", "unprotected"])]
    m_frame = match_frame([tiny], [0.9], truths[0][0], min_size=20)
    assert list(m_frame.outcome) == [IGNORED]
    m = evaluate([(np.array([tiny], np.float32), np.array([0.9]))], truths, min_size=20)
    assert m.faces == 1 and m.ignored_faces == 1 and m.false_per_frame == 0.0
    assert m.recall == 0.0 and m.recall_per_class == {"protected": 0.0}
    m_all = evaluate([(np.array([tiny], np.float32), np.array([0.9]))], truths, min_size=0)
    assert m_all.recall_per_class == {"protected": 0.0, "unprotected": 1.0}


def test_recall_per_class_and_false_detections_per_frame_over_frames():
    truths = [(np.array([FACE_A, FACE_B], np.float32), ["protected", "unprotected"]),
              (np.array([FACE_A], np.float32), ["protected"]),
              (np.zeros((0, 4), np.float32), [])]
    preds = [(np.array([FACE_B], np.float32), np.array([0.9])),
             (np.array([FACE_A], np.float32), np.array([0.8])),
             (np.array([FACE_A, FACE_B], np.float32), np.array([0.7, 0.75]))]  # a frame with no faces
    m = evaluate(preds, truths)
    assert m.recall_per_class == {"protected": 0.5, "unprotected": 1.0}
    assert m.faces_per_class == {"protected": 2, "unprotected": 1}
    assert m.false_per_frame == pytest.approx(2 / 3)
    assert m.frames == 3 and m.detections == 4


def test_average_precision_edge_cases():
    assert average_precision([], [], 3) == 0.0
    assert np.isnan(average_precision([0.5], [False], 0))
    assert average_precision([0.9, 0.8], [True, True], 2) == pytest.approx(1.0)


def test_metrics_dict_is_plain_and_table_shows_each_class():
    truths = [(np.array([FACE_A, FACE_B], np.float32), ["protected", "unprotected"])]
    m = evaluate([(np.array([FACE_A], np.float32), np.array([0.9]))], truths)
    d = m.as_dict()
    assert d["recall_per_class"] == {"protected": 1.0, "unprotected": 0.0}
    table = format_table({"pretrained": m, "fine-tuned": d})
    assert "recall protected" in table and "recall unprotected" in table
    assert "pretrained" in table and "fine-tuned" in table


def test_pretrained_mtcnn_scored_on_real_labeled_frames(shared_dir):
    from cctv.labels import load_labels
    from mtcnn import MTCNN

    items = load_labels(shared_dir / "data/suite_exports/facemask853_spb_download").items[:6]
    detector = MTCNN(keep_all=True)
    m, preds = evaluate_detector(detector.detect, items, min_size=20, progress=False)
    assert len(preds) == 6 and m.frames == 6
    assert m.faces + m.ignored_faces == sum(len(i.boxes) for i in items)
    # MTCNN finds most faces of 20 px and more on these photos, with few false boxes.
    assert m.recall > 0.5 and m.ap50 > 0.5 and m.false_per_frame < 1.0
