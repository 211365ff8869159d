"""The main job's report and privacy on real footage: the report of four_people_masking.mp4, and
--blur_faces (no face in the output is recognisable; events, counts and the frames kept for labeling unchanged)."""
import json
import os
from pathlib import Path

import pytest

import cctv_mask_detector
from cctv.alerts import read_events
from cctv.video import read_frames

ROOT = Path(__file__).resolve().parents[1]
DETECTOR = Path(os.environ.get("CCTV_DETECTOR_MODEL", ROOT / "models" / "detector.pt"))


@pytest.fixture(scope="module")
def four_people(shared_dir):
    if not DETECTOR.is_file():
        pytest.skip(f"{DETECTOR} not found (the repo ships models/detector.pt)")
    return shared_dir / "data" / "footage" / "four_people_masking.mp4"


def job(out, **kwargs):
    return cctv_mask_detector.run(detector_model_path=str(DETECTOR), output_path=str(out), no_voice=True,
                                  quiet=True, threads=2, **kwargs)


@pytest.mark.slow
def test_report_of_four_people_shows_masks_going_on_and_the_alert(tmp_path, four_people):
    out = tmp_path / "four_people.mp4"
    summary = job(out, footage_path=str(four_people), report=True)
    timeline = [json.loads(x) for x in Path(f"{out}.timeline.jsonl").read_text().splitlines()]
    ratios = [t["ratio"] for t in timeline]
    assert len(timeline) == 17 and sum(t["frames"] for t in timeline) == summary.frames == 414
    assert ratios[0] < 0.5 and min(ratios[-4:]) > 0.9  # masks go on one by one: 20% at first, over 90% at the end
    manifest = json.loads(Path(f"{out}.run.json").read_text())
    assert manifest["state"] == "finished" and manifest["frames"] == 414 and manifest["alerts"] == summary.alerts
    assert manifest["models"]["detector"]["path"] == str(DETECTOR)
    html = summary.report.read_text()
    assert summary.report == Path(f"{out}.report.html") and 'id="ratio-plot"' in html
    alerts = read_events(f"{out}.events.jsonl")
    assert alerts and all(f'id="alert-{i}"' in html for i in range(1, len(alerts) + 1))
    first_row = html[html.index('id="alert-1"'):html.index("</tr>", html.index('id="alert-1"'))]
    assert 'src="data:image/jpeg;base64,' in first_row  # its snapshot (or its frame from the recording)
    assert "skipped" not in html.lower() or 'id="skipped"' not in html


def faces_found(video, detector):
    return sum(len(detector.detect(frame)[0]) for frame in read_frames(video))


@pytest.mark.slow
def test_blurred_faces_are_not_recognisable_and_nothing_else_changes(tmp_path, four_people):
    from mtcnn import MTCNN

    runs = {}
    for mode in ("none", "all", "others"):
        out = tmp_path / f"{mode}.mp4"
        summary = job(out, footage_path=str(four_people), max_frames=25, blur_faces=mode,
                      uncertain_frames_dir=str(tmp_path / f"uncertain-{mode}"), uncertain_margin=0.5,
                      uncertain_max_per_second=5)
        runs[mode] = (out, summary, read_events(f"{out}.events.jsonl"))
    detector = MTCNN(keep_all=True)  # default thresholds: what would recognise a face in the video
    found = {mode: faces_found(out, detector) for mode, (out, _, _) in runs.items()}
    assert found["none"] >= 100 and found["all"] < 0.05 * found["none"], found
    # others: the people the alerts named stay visible from their alert on, the rest is pixelated
    assert found["all"] < found["others"] < found["none"], found
    base = runs["none"][1]
    for mode in ("all", "others"):
        _, summary, events = runs[mode]
        assert without_paths(events) == without_paths(runs["none"][2]) and events
        assert (summary.frames, summary.faces, summary.protected, summary.alerts, summary.people) == \
               (base.frames, base.faces, base.protected, base.alerts, base.people)
    faces_in = {mode: [faces_in_image(tmp_path / shot, detector) for e in events for shot in e["snapshots"]]
                for mode, (_, _, events) in runs.items()}
    assert all(faces_in["none"]) and not any(faces_in["all"]), faces_in  # frame and face snapshots alike
    assert all(faces_in["others"]), faces_in  # each alert's own person, in its frame and its face snapshot
    kept = sorted((tmp_path / "uncertain-all").glob("*.jpg"))  # frames for labeling: never blurred
    assert kept and [p.name for p in kept] == [p.name for p in sorted((tmp_path / "uncertain-none").glob("*.jpg"))]
    assert all(faces_in_image(path, detector) >= 4 for path in kept)


def without_paths(events):
    """Alert lines without their file names (each run's snapshots are named after its own output)."""
    return [{**e, "snapshots": [Path(s).name for s in e["snapshots"]]} for e in events]


def faces_in_image(path, detector):
    import cv2

    return len(detector.detect(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))[0])
