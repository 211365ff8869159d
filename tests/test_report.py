"""The compliance report (report.py, cctv.report): sections per source, bad input that still renders and says
what was skipped, date ranges, the timeline the job writes, the live rewrite."""
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from cctv.report import build_report, write_report
from cctv.report.live import RunReport
from cctv.timeline import Timeline
from cctv.video import VideoWriter
from report_runs import START, footage_frame, write_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def snapshot(request):
    shared = request.getfixturevalue("shared_dir") if (ROOT.parent / "shared" / "data").is_dir() else None
    return footage_frame(shared)


def sections(html):
    return re.findall(r'<section class="card source" id="source-\d+" data-camera="([^"]+)"', html)


def external_refs(html):
    """src/href that would need a file or the network (the report must open from disk alone)."""
    return [ref for ref in re.findall(r'(?:src|href)="([^"]*)"', html) if not ref.startswith(("data:", "#"))]


def test_a_folder_of_two_sources_gives_one_section_each(tmp_path, snapshot):
    write_run(tmp_path / "runs", "entrance.mp4", "entrance", alerts=(30, 200), snapshot_image=snapshot)
    write_run(tmp_path / "runs", "backdoor.mp4", "backdoor", alerts=(50,), snapshot_image=snapshot)
    html, facts = build_report([tmp_path / "runs"])
    assert sections(html) == ["backdoor", "entrance"] and facts["alerts"] == 3 and facts["skipped"] == []
    assert html.count('id="ratio-plot"') == 2 and html.count('id="people-plot"') == 2
    assert "People seen per minute" in html  # tracking's people_seen, binned over the 10-minute run
    assert html.count('src="data:image/jpeg;base64,') == 6  # a frame and a face snapshot per alert
    assert "v0002 (detector.pt)" in html  # the models the runs used, with their versions
    assert "1/4 masked" in html and "rule: person" in html and "tracks 1" in html  # tracking's alert fields
    assert external_refs(html) == []


def test_ratio_plot_follows_the_timeline(tmp_path):
    write_run(tmp_path, alerts=(10,))
    html, _ = build_report([tmp_path / "camera0.mp4"])
    svg = re.search(r'<svg id="ratio-plot".*?</svg>', html, re.S).group(0)
    assert "alert below 75%" in svg and "#1" in svg  # the threshold line and the numbered alert mark
    assert 'id="alert-1"' in html and "25%" in html  # the alert's row, its protected share


def test_bad_input_still_renders_and_says_what_was_skipped(tmp_path, snapshot):
    base = write_run(tmp_path, "camera0.mp4", alerts=(10, 20), snapshot_image=snapshot)
    (tmp_path / "camera0.mp4.snapshots" / "alert0002-track2-face.jpg").unlink()  # a missing snapshot
    events = Path(f"{base}.events.jsonl")
    good = events.read_text().splitlines()
    events.write_text("\n".join([good[0], "{not json", json.dumps({"frame": 3}), good[1], '{"time_s": 4'])
                      )  # malformed, not an alert, and a torn last line (no newline)
    (tmp_path / "empty.mp4.events.jsonl").write_text("")  # a run that processed nothing
    html, facts = build_report([tmp_path])
    skipped = "\n".join(facts["skipped"])
    assert "camera0.mp4.events.jsonl line 2: not JSON" in skipped
    assert "line 3: not an alert line (missing or non-numeric time_s" in skipped
    assert "line 5: cut short" in skipped
    assert "alert #2: snapshot camera0.mp4.snapshots/alert0002-track2-face.jpg missing" in skipped
    assert "empty.mp4: empty run" in skipped
    assert 'id="skipped"' in html and all(line.replace("'", "&#39;") in html for line in facts["skipped"])
    assert 'id="alert-1"' in html and 'id="alert-2"' in html and "1 snapshot missing" in html
    assert facts["alerts"] == 2


def test_snapshot_paths_never_leave_the_runs_folder(tmp_path, snapshot):
    import cv2

    cv2.imwrite(str(tmp_path / "private.jpg"), snapshot)
    runs = tmp_path / "runs"
    base = write_run(runs, alerts=())
    Path(f"{base}.events.jsonl").write_text(json.dumps(
        {"time_s": 1.0, "frame": 10, "faces": 2, "protected": 0, "ratio": 0.0, "snapshots": ["../private.jpg"]}) + "\n")
    html, facts = build_report([runs])
    assert "data:image/jpeg" not in html
    assert any("../private.jpg outside the run's folder" in s for s in facts["skipped"])


def test_a_date_range_of_one_camera(tmp_path):
    day2 = START + timedelta(days=1)
    write_run(tmp_path, "camera0-day1.mp4", "camera0", start=START, alerts=(10,))
    write_run(tmp_path, "camera0-day2.mp4", "camera0", start=day2, alerts=(20, 300))
    write_run(tmp_path, "camera1.mp4", "camera1", start=day2, alerts=(5,))
    with open(tmp_path / "camera1.mp4.events.jsonl", "a") as f:
        f.write("{torn\n")  # another camera's problem: not this report's
    html, facts = build_report([tmp_path], since=day2.date().isoformat(), until=day2.date().isoformat(),
                               camera="camera0")
    assert sections(html) == ["camera0"] and facts["alerts"] == 2
    assert not any("camera1" in line for line in facts["skipped"])
    html, facts = build_report([tmp_path], since="2026-11-30T08:05", until="2026-11-30T09:00", camera="camera0")
    assert facts["alerts"] == 0 and 'id="ratio-plot"' in html  # the day-1 run's timeline after 08:05
    html, facts = build_report([tmp_path], camera="nobody")
    assert facts["sections"] == 0 and 'id="no-data"' in html


def test_an_old_run_shows_its_alerts_with_frames_from_the_recording(tmp_path, snapshot):
    """Runs from before timelines and snapshots: five-key alert lines and the recording."""
    with VideoWriter(tmp_path / "old.mp4", 960, 506, 25) as writer:
        for i in range(30):
            writer.write(np.ascontiguousarray(np.roll(snapshot, i, axis=1)))
    (tmp_path / "old.mp4.events.jsonl").write_text(
        json.dumps({"time_s": 0.8, "frame": 20, "faces": 5, "protected": 1, "ratio": 0.2}) + "\n")
    html, facts = build_report([tmp_path / "old.mp4"])
    assert facts["alerts"] == 1 and "frame from the recording" in html and "data:image/jpeg" in html
    assert "the plot shows the alerts only" in html and facts["skipped"] == []


def test_timeline_lines_per_second(tmp_path):
    start = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    timeline = Timeline(tmp_path / "t.jsonl", fps=10, start=start)
    for frame in range(25):
        faces = 0 if frame >= 20 else 4
        timeline.add(frame, faces, faces // 2 if frame < 10 else faces)
    timeline.close()
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(x["frame"], x["frames"], x["ratio"]) for x in lines] == [(0, 10, 0.5), (10, 10, 1.0), (20, 5, None)]
    assert lines[1]["wall_time"] == "2026-12-01T09:00:01+00:00" and lines[1]["faces"] == 4.0
    assert lines[0]["people_seen"] is None  # without tracking


def test_the_live_report_is_rewritten_while_the_run_goes_on(tmp_path):
    base = write_run(tmp_path, alerts=(10,))
    report = RunReport(base, every_s=0.01)
    report.due = 0  # due now
    report.poll()
    report.thread.join()
    first = report.target.read_text()
    assert 'id="alert-1"' in first
    with open(f"{base}.events.jsonl", "a") as f:
        f.write(json.dumps({"time_s": 400.0, "frame": 4000, "faces": 4, "protected": 0, "ratio": 0.0}) + "\n")
    report.close()
    assert 'id="alert-2"' in report.target.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cli_writes_the_report_and_rejects_bad_paths(tmp_path, snapshot):
    write_run(tmp_path / "runs", alerts=(10,), snapshot_image=snapshot)
    out = tmp_path / "report.html"
    ok = subprocess.run([sys.executable, str(ROOT / "report.py"), "--runs", str(tmp_path / "runs"),
                         "--output", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0 and "1 section, 1 alert, 0 skipped" in ok.stdout and out.is_file()
    bad = subprocess.run([sys.executable, str(ROOT / "report.py"), "--runs", str(tmp_path / "nothing"),
                          "--output", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: {tmp_path / 'nothing'}: no such run, file or folder"
    bad = subprocess.run([sys.executable, str(ROOT / "report.py"), "--runs", str(tmp_path / "runs"),
                          "--from", "yesterday", "--output", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "error: --from yesterday: not a date" in bad.stderr


def test_write_report_is_atomic(tmp_path):
    write_run(tmp_path / "runs", alerts=())
    facts = write_report([tmp_path / "runs"], tmp_path / "out" / "r.html")
    assert facts["sections"] == 1 and [p.name for p in (tmp_path / "out").iterdir()] == ["r.html"]


def test_a_live_job_keeps_its_report_fresh_while_it_runs(tmp_path):
    """The job's frame loop with a live source (no models: faces given): the report is rewritten during the
    run (state running), the timeline carries the clock, and the final report says finished."""
    import time as clock

    from cctv.pipeline import Faces, JobConfig, Warnings, _Job
    from cctv.video import SourceInfo

    out = tmp_path / "camera0.mp4"
    cfg = JobConfig(footage_path="0", output_path=str(out), no_voice=True, quiet=True, report=True,
                    report_every_s=0.05, blur_faces="all", alert_rule="frame")  # a still face: no person
    # 2 frames/s of video fed at up to 100 frames/s: video time runs far ahead of the clock
    job = _Job(cfg, SourceInfo("camera 0", "camera0", 160, 120, 2, None, True), Warnings(), 4)
    unmasked = Faces(np.array([[40, 30, 80, 80]], np.float32), np.array([0.99], np.float32),
                     np.array([0.1], np.float32))
    began = datetime.now(timezone.utc)
    seen_running, frames, deadline = False, 0, clock.monotonic() + 60
    while frames < 40 or not seen_running and clock.monotonic() < deadline:  # a rewrite takes seconds under load
        job.handle(np.full((120, 160, 3), 200, np.uint8), unmasked)
        frames += 1
        clock.sleep(0.01)
        seen_running = seen_running or (job.report.target.exists()
                                        and "<td>running</td>" in job.report.target.read_text())
    job.close(failed=False)
    ended = datetime.now(timezone.utc)
    assert seen_running, "the report was not rewritten during the run"
    html = job.report.target.read_text()
    assert "<td>finished</td>" in html and 'id="alert-1"' in html and "<td>all</td>" in html
    lines = [json.loads(x) for x in Path(f"{out}.timeline.jsonl").read_text().splitlines()]
    assert sum(x["frames"] for x in lines) == frames and {x["frames"] for x in lines[:-1]} == {2}
    assert all(x["ratio"] == 0.0 for x in lines)
    walls = [datetime.fromisoformat(x["wall_time"]) for x in lines]  # the clock (to the second), not video time
    second = timedelta(seconds=1)
    assert walls == sorted(walls) and began - second <= walls[0] and walls[-1] <= ended + second
    assert lines[-1]["time_s"] >= (ended - began).total_seconds() + 5  # the video time would have been far later


def test_a_run_names_the_model_versions_it_used(tmp_path):
    from cctv.model_registry import describe_models, set_current

    models = tmp_path / "models"
    for name in ("detector.pt", "versions/v0003/detector.pt", "versions/v0003/mtcnn.pt"):
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(b"weights")
    set_current(models, models / "versions" / "v0003")
    live = describe_models(models / "versions/v0003/detector.pt", models / "versions/v0003/mtcnn.pt", models)
    assert (live["detector"]["version"], live["mtcnn"]["version"], live["detector"]["current"]) == ("v0003", "v0003", True)
    by_hand = describe_models(models / "detector.pt", None, models)
    assert (by_hand["detector"]["version"], by_hand["mtcnn"]["version"]) == ("hand-trained", "pretrained")
    assert by_hand["current_version"] == "v0003"


def test_alert_clips_are_linked_from_where_the_report_is(tmp_path):
    base = write_run(tmp_path / "runs", alerts=())
    (tmp_path / "runs" / "camera0.mp4.clips").mkdir()
    (tmp_path / "runs" / "camera0.mp4.clips" / "alert0001.mp4").write_bytes(b"clip")
    Path(f"{base}.events.jsonl").write_text("".join(json.dumps(
        {"time_s": t, "frame": int(t * 10), "faces": 3, "protected": 0, "ratio": 0.0,
         "clip": f"camera0.mp4.clips/alert{n:04d}.mp4"}) + "\n" for n, t in ((1, 5.0), (2, 50.0))))
    html, facts = build_report([tmp_path / "runs"], output_dir=tmp_path / "reports")
    assert '<a href="../runs/camera0.mp4.clips/alert0001.mp4">clip</a>' in html
    assert facts["skipped"] == ["camera0.mp4 alert #2: clip camera0.mp4.clips/alert0002.mp4 missing"]
