"""Motion gating: region search equals whole-frame detection, still frames skip detection, auto mode turns
gating off when the whole view moves, and the job's recording modes (--record alerts / none)."""
import json

import numpy as np
import pytest
import torch

from cctv.detection_eval import box_iou, kept_detections
from cctv.motion import GatedDetector, MotionGate, grow_and_merge
from cctv.video import open_source, probe_video, read_frames
from mtcnn import MTCNN
from mtcnn import cascade
from mtcnn.cascade import PNET_STRIDE, level_windows

FOOTAGE = "data/footage"


@pytest.fixture(scope="module")
def mtcnn():
    return MTCNN(keep_all=True, select_largest=False)


class CountingDetector:
    """An MTCNN that counts the frames it is asked to search."""

    def __init__(self, mtcnn):
        self.mtcnn, self.device, self.frames, self.regions = mtcnn, mtcnn.device, 0, []  # each frame's plan

    def detect(self, frames, regions=None):
        self.frames += len(frames)
        self.regions += [r for r in regions or [None] * len(frames)]
        return self.mtcnn.detect(frames, regions=regions)


def test_level_windows_are_aligned_and_cover_the_region():
    for scale, size in [(0.6, (304, 577)), (0.3015, (153, 290)), (0.0435, (23, 42))]:
        for region in [(10, 10, 50, 60), (400, 100, 960, 506), (0, 0, 3, 3)]:
            for rows, cols in level_windows([region], scale, *size):
                for part, length, lo, hi in [(rows, size[0], region[1], region[3]),
                                             (cols, size[1], region[0], region[2])]:
                    assert part.start % PNET_STRIDE == 0
                    assert (part.stop - part.start) % PNET_STRIDE == 0 or part.stop == length
                    halo = cascade.REGION_HALO - 1  # every PNet window with half of it in the region
                    assert part.start <= max(0, lo * scale - halo) and part.stop >= min(length, hi * scale + halo)
    # two regions whose windows overlap become one window
    assert len(level_windows([(0, 0, 40, 40), (45, 0, 90, 40)], 0.6, 300, 500)) == 1
    assert grow_and_merge([(10, 10, 20, 20), (25, 10, 35, 20)], 0.25, 100, 100) == [(2, 2, 43, 28)]


def test_region_search_finds_the_faces_whole_frame_detection_finds(shared_dir, mtcnn):
    frames = list(read_frames(shared_dir / FOOTAGE / "four_people_masking.mp4", 0, 300, 100))
    for frame in frames:
        boxes, probs = mtcnn.detect(frame)
        assert len(boxes) >= 4
        h, w = frame.shape[:2]
        # the faces' boxes grown a little, and an empty strip: the faces come out with the same boxes
        regions = grow_and_merge(list(boxes), 0.1, w, h) + [(0, 0, 40, 40)]
        got, got_probs = mtcnn.detect(frame, regions=regions)
        assert len(got) == len(boxes)
        assert (box_iou(boxes, got).max(axis=1) >= 0.9).all()
        assert np.allclose(np.sort(got_probs), np.sort(probs), atol=1e-4)
        # a region away from every face finds none of them
        far = [(0, 0, 60, 60)]
        assert len(mtcnn.detect(frame, regions=far)[0]) <= 1  # (a face in that corner would be the 1)


@pytest.mark.slow
def test_gated_detection_keeps_whole_frame_detections(shared_dir, mtcnn):
    """On a real clip segment (people moving, sitting still, putting masks on) the gated detector keeps
    >= 98% of the whole-frame detections at IoU >= 0.5, and saves work."""
    path = shared_dir / FOOTAGE / "four_people_masking.mp4"
    frames = list(read_frames(path, 100, 200))
    whole = [mtcnn.detect(f) for f in frames]
    gated = GatedDetector(mtcnn, MotionGate(25, mode="on", keyframe_s=2.0))
    found = [tuple(r[0] for r in gated.detect([f])) for f in frames]
    kept, total = kept_detections(whole, found)
    assert total > 300 and kept / total >= 0.98
    assert gated.stats["regions"] > gated.stats["whole"]


def test_still_frames_skip_detection(shared_dir, mtcnn):
    """An empty room that does not change: after the first (whole-frame) detection, no frame reaches the
    detector until the idle keyframe (nothing changed, no face: keyframe_s does not apply)."""
    frame = next(read_frames(shared_dir / FOOTAGE / "one_by_one_people.mp4", 0, 1))
    counting = CountingDetector(mtcnn)
    gated = GatedDetector(counting, MotionGate(10, mode="on", keyframe_s=1.0, idle_keyframe_s=2.0))
    results = [gated.detect([frame.copy()]) for _ in range(25)]
    assert all(len(r[0][0]) == 0 for r in results)
    assert counting.frames == 2  # frames 0 and 20
    assert gated.stats == {"skipped": 23, "regions": 0, "whole": 2}
    # a keyframe on request (the hook tracking uses)
    gated.request_keyframe()
    gated.detect([frame])
    assert counting.frames == 3


def test_people_in_view_keep_the_regular_keyframes_searched_where_they_are(shared_dir, mtcnn):
    """A person standing so still that nothing changes (the same frame again and again): while the job's tracks
    say someone is in view, keyframes keep coming every keyframe_s, searching the people's boxes, not only at the
    idle keyframe; the whole frame comes at the idle cadence."""
    frame = next(read_frames(shared_dir / FOOTAGE / "one_by_one_people.mp4", 0, 1))
    counting = CountingDetector(mtcnn)
    gated = GatedDetector(counting, MotionGate(10, mode="on", keyframe_s=1.0, idle_keyframe_s=3.0))
    gated.gate.people_in_view, gated.gate.people_boxes = True, [(300.0, 100.0, 360.0, 260.0)]
    for _ in range(30):
        gated.detect([frame.copy()])
    assert gated.stats == {"skipped": 27, "regions": 2, "whole": 1}  # keyframes 10 and 20 search the person
    assert all(r[0][0] <= 300 and r[0][2] >= 360 for r in counting.regions[1:])
    gated.gate.people_in_view, gated.gate.people_boxes = False, ()
    for _ in range(25):
        gated.detect([frame.copy()])
    assert gated.stats["whole"] == 2 and gated.stats["regions"] == 2  # the idle cadence: frame 30, nothing else


def test_keyframes_search_a_change_too_slow_to_show_between_two_frames(shared_dir, mtcnn):
    """A patch that brightens by 2 levels a frame (the threshold is 10): no two frames differ enough, but the
    keyframe sees it against the last keyframe and searches it."""
    frame = next(read_frames(shared_dir / FOOTAGE / "one_by_one_people.mp4", 0, 1))
    counting = CountingDetector(mtcnn)
    gated = GatedDetector(counting, MotionGate(10, mode="on", keyframe_s=1.0, idle_keyframe_s=30.0))
    for i in range(21):
        f = frame.copy()
        f[200:300, 400:500] = np.clip(f[200:300, 400:500].astype(int) + 2 * i, 0, 255).astype(np.uint8)
        gated.detect([f])
    assert gated.stats["whole"] == 1 and gated.stats["regions"] == 0  # idle: the idle cadence (30 s)
    gated.gate.changed = True  # something moved elsewhere: the regular keyframe cadence
    for i in range(21, 31):
        f = frame.copy()
        f[200:300, 400:500] = np.clip(f[200:300, 400:500].astype(int) + 2 * i, 0, 255).astype(np.uint8)
        gated.detect([f])
    assert gated.stats["regions"] == 1
    (x1, y1, x2, y2), = counting.regions[-1]
    assert x1 <= 400 and y1 <= 200 and x2 >= 500 and y2 >= 300


def test_a_keyframe_takes_a_drift_of_the_whole_views_brightness_for_no_change(shared_dir, mtcnn):
    """The camera's exposure drifts: the whole view brightens by 1.5 levels a frame (15 by the keyframe, over
    the threshold of 10) while a patch brightens faster. The keyframe searches the patch, not the whole frame:
    on one_by_one_people.mp4 such drifts made most keyframes whole-frame detections."""
    frame = next(read_frames(shared_dir / FOOTAGE / "one_by_one_people.mp4", 0, 1)).astype(int)
    counting = CountingDetector(mtcnn)
    gated = GatedDetector(counting, MotionGate(10, mode="on", keyframe_s=1.0, idle_keyframe_s=30.0))
    gated.detect([frame.astype(np.uint8)])
    gated.gate.changed = True  # something moved elsewhere: the regular keyframe cadence
    for i in range(1, 11):
        f = frame + int(1.5 * i)
        f[200:300, 400:500] += 2 * i
        gated.detect([np.clip(f, 0, 255).astype(np.uint8)])
    assert gated.stats == {"skipped": 9, "regions": 1, "whole": 1}
    (x1, y1, x2, y2), = counting.regions[-1]
    assert x1 <= 400 and y1 <= 200 and x2 >= 500 and y2 >= 300
    assert (x2 - x1) * (y2 - y1) < 0.2 * frame.shape[0] * frame.shape[1]


def test_auto_mode_turns_gating_off_on_a_panning_source(tmp_path, mtcnn):
    """The demo clip pans and zooms: auto mode sees the whole view moving and detects whole frames; on a
    still camera it keeps gating."""
    from cctv.demo import make_demo_clip

    clip = make_demo_clip(tmp_path, mtcnn)
    fps = float(open_source(clip).info.fps)
    gate = MotionGate(fps, mode="auto", keyframe_s=10.0)
    plans = [gate.plan(f) for f in read_frames(clip)]
    assert gate.view_moving
    assert sum(p is None for p in plans[len(plans) // 2:]) == len(plans) - len(plans) // 2


def test_auto_mode_keeps_gating_on_a_still_camera(shared_dir):
    gate = MotionGate(25, mode="auto", keyframe_s=10.0)
    plans = [gate.plan(f) for f in read_frames(shared_dir / FOOTAGE / "four_people_masking.mp4", 0, 100)]
    assert not gate.view_moving
    assert sum(p is None for p in plans) <= 10  # the first keyframe, and frames where most of the view changed


def _run_job(tmp_path, footage, **kwargs):
    import cctv_mask_detector

    out = tmp_path / "out" / "job.mp4"
    summary = cctv_mask_detector.run(footage_path=str(footage), output_path=str(out), no_voice=True, quiet=True,
                                     threads=2, **kwargs)
    events = [json.loads(line) for line in out.with_name("job.mp4.events.jsonl").read_text().splitlines()]
    return out, summary, events


def test_record_alerts_writes_a_clip_around_the_alert(shared_dir, tmp_path):
    """--record alerts: no whole video; a playable clip from clip_before_s before the alert to clip_after_s
    after it, named (relative to the events file) in the event line."""
    out, summary, events = _run_job(tmp_path, shared_dir / FOOTAGE / "four_people_masking.mp4", max_frames=60,
                                    record="alerts", clip_before_s=0.4, clip_after_s=0.6, alert_frames=20,
                                    alert_rule="frame")
    assert not out.exists()
    assert len(events) == 1 and events[0]["frame"] == 19  # the 20th frame of unmasked faces
    clip = out.parent / events[0]["clip"]
    assert events[0]["clip"] == "job.clips/alert0001.mp4" and clip.is_file()
    frames, fps, width, height, _ = probe_video(clip)
    assert (fps, width, height) == (25, 960, 506)
    assert frames == 10 + 1 + 15  # 0.4 s before, the alert's frame, 0.6 s after
    assert summary.clips == 1 and not list(out.parent.glob(".*tmp*"))


def test_record_none_writes_no_video(shared_dir, tmp_path):
    out, summary, _ = _run_job(tmp_path, shared_dir / FOOTAGE / "channy_in.gif", record="none")
    assert summary.frames == 20
    assert not list(out.parent.glob("*.mp4")) and not list(out.parent.glob("*.clips"))


def test_bad_motion_and_record_flags_are_one_line_errors(tmp_path, shared_dir):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for flags in (["--motion", "sometimes"], ["--record", "everything"], ["--keyframe_s", "0"]):
        r = subprocess.run([sys.executable, str(root / "cctv_mask_detector.py"), "--footage_path",
                            str(shared_dir / FOOTAGE / "channy_in.gif"), "--output_path",
                            str(tmp_path / "x.mp4"), *flags], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.startswith("error: --") and len(r.stderr.splitlines()) == 1


def test_region_search_on_the_gpu_batch_path(shared_dir, mtcnn, monkeypatch):
    """The GPU's batched tensor path (run on the CPU, as in test_mtcnn_device_path: tensor pyramid, no bands):
    in a batch where one frame is skipped and the others search rectangles, those find what whole-frame
    detection finds."""
    import torch

    import mtcnn.cascade as cascade
    import mtcnn.nets as nets

    monkeypatch.setattr(cascade, "resize_area", cascade._resize_area_torch)
    monkeypatch.setattr(nets, "PNET_BAND_ROWS", 10 ** 9)
    frames = list(read_frames(shared_dir / FOOTAGE / "four_people_masking.mp4", 0, 3))
    expected = [mtcnn.detect(f) for f in frames]
    h, w = frames[0].shape[:2]
    regions = [grow_and_merge(list(expected[0][0]), 0.1, w, h), [], grow_and_merge(list(expected[2][0]), 0.1, w, h)]
    with torch.inference_mode():
        found = mtcnn._detect_same_size(frames, regions)
    assert len(found[1][0]) == 0
    for (boxes, _), (got, _, _) in zip([expected[0], expected[2]], [found[0], found[2]]):
        assert len(got) == len(boxes) and (box_iou(boxes, got).max(axis=1) >= 0.9).all()


def test_an_alert_during_a_clip_extends_it(tmp_path):
    """Two alerts 0.5 s apart make one clip: 1 s before the first to 1 s after the second; frames outside
    the clip are never drawn."""
    from fractions import Fraction

    from cctv.recording import AlertClips, AnnotatedFrame
    from cctv.video import SourceInfo

    info = SourceInfo("synthetic", "synthetic", 64, 48, Fraction(10), None, True)
    clips = AlertClips(tmp_path / "cam.mp4", info, threads=1, queue_size=4, before_s=1.0, after_s=1.0)
    drawn = []
    paths = []
    for i in range(60):
        if i in (20, 25):
            paths.append(clips.alert(i / 10))
        clips.add(AnnotatedFrame(np.full((48, 64, 3), i * 4, np.uint8), lambda frame, i=i: drawn.append(i)))
    clips.close()
    assert paths == ["cam.clips/alert0001.mp4"] * 2
    assert probe_video(tmp_path / paths[0])[0] == 10 + 5 + 1 + 10  # 1 s before, 20..25, 1 s after
    assert drawn == list(range(10, 36))
    # a restarted job goes on numbering: the earlier clip is kept
    again = AlertClips(tmp_path / "cam.mp4", info, threads=1, queue_size=4, before_s=1.0, after_s=1.0)
    assert again.alert(0.0) == "cam.clips/alert0002.mp4"
    again.add(AnnotatedFrame(np.zeros((48, 64, 3), np.uint8)))
    again.close()
    assert (tmp_path / paths[0]).is_file()


def test_pnet_on_a_canvas_of_windows_scores_each_window_as_pnet_on_it_alone(shared_dir, mtcnn):
    """Region frames run PNet once on a canvas of windows (cascade._pnet_on_canvas). Windows with odd sides
    (a level's edge) end in half pooling cells; each window's cells must equal PNet on the window alone."""
    frame = next(read_frames(shared_dir / FOOTAGE / "four_people_masking.mp4", 300, 301))
    crops = [frame[y:y + h, x:x + w] for y, x, h, w in
             [(100, 400, 37, 29), (50, 50, 64, 80), (200, 600, 24, 24), (300, 100, 41, 52), (0, 0, 13, 15),
              (0, 300, 301, 41)]]  # the tall one spans PNet's row bands
    layout = cascade.CanvasLayout([c.shape[:2] for c in crops])
    canvas = torch.zeros((1, 3, layout.height, layout.width))
    for crop, (y, x) in zip(crops, layout.origins):
        canvas[0, :, y:y + crop.shape[0], x:x + crop.shape[1]] = torch.from_numpy(crop).permute(2, 0, 1).float()
    pnet = mtcnn.pnet
    with torch.inference_mode():
        reg, logits = pnet.forward_raw(canvas, layout.odd_columns, layout.odd_rows)
        unfixed = pnet.forward_raw(canvas)[1]
        differs = False
        for crop, (y, x) in zip(crops, layout.origins):
            alone_reg, alone_logits = pnet.forward_raw(torch.from_numpy(crop).permute(2, 0, 1)[None].float())
            h, w = alone_logits.shape[2:]
            cells = (slice(None), slice(None), slice(y // 2, y // 2 + h), slice(x // 2, x // 2 + w))
            assert torch.allclose(logits[cells], alone_logits, atol=1e-4)
            assert torch.allclose(reg[cells], alone_reg, atol=1e-4)
            differs |= not torch.allclose(unfixed[cells], alone_logits, atol=1e-4)
    assert differs  # without closing the odd windows' half cells, some cells come out wrong


def test_region_search_on_a_canvas_equals_window_by_window(shared_dir, mtcnn):
    """The same candidates, scores and order, for regions inside the frame, at its edges and corners."""
    frame = next(read_frames(shared_dir / FOOTAGE / "four_people_masking.mp4", 300, 301))
    integral = cascade.integral_image(frame[None])
    h, w = frame.shape[:2]
    scales = cascade.pyramid_scales(h, w, 20, 0.709)
    pnet = mtcnn._nets[0]
    with torch.inference_mode():
        for regions in ([(150, 130, 330, 300)], [(660, 200, w, h)], [(0, 0, w, 100), (500, 200, 700, 400)],
                        [(300, 100, 640, h)]):
            windows = cascade._windows(regions, scales, h, w, cascade.PNET_STRIDE)
            alone, alone_levels = cascade._pnet_per_window(pnet, integral, windows, 0.6)
            found, levels = cascade._pnet_on_canvas(pnet, integral, windows, 0.6)
            assert len(found) == len(alone) > 0
            assert torch.equal(levels, alone_levels) and torch.equal(found.image, alone.image)
            assert torch.allclose(found.boxes, alone.boxes, atol=1e-4)
            assert torch.allclose(found.scores, alone.scores, atol=1e-5)
