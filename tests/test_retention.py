"""--retention_days: old runs, snapshots, clips, labeling batches and waiting frames go, and are logged;
new files, a run in progress, other files and models stay."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import active_learning
from cctv.active_learning.batches import list_batches, take_batch
from cctv.active_learning.journal import History
from cctv.retention import prune_labeling, prune_outputs

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400


def touch(path, age_days, text="x"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path


def run_files(folder, name, age_days):
    """What the job leaves for a run: recording, events, timeline, manifest, report, a snapshot and a clip."""
    files = [folder / name] + [folder / f"{name}{s}" for s in (".events.jsonl", ".timeline.jsonl", ".run.json",
                                                               ".report.html")]
    files += [folder / f"{name}.snapshots" / "alert0001-frame00010.jpg", folder / f"{name}.clips" / "alert0001.mp4"]
    return [touch(p, age_days) for p in files]


def test_old_runs_go_new_ones_and_other_files_stay(tmp_path):
    old = run_files(tmp_path, "monday.mp4", 10)
    new = run_files(tmp_path, "today.mp4", 0.5)
    live = run_files(tmp_path, "camera0.mp4", 10)  # a run still recording: the job keeps its own files
    mixed = touch(tmp_path / "today.mp4.snapshots" / "alert0000-old.jpg", 10)  # an old snapshot of a new run
    others = [touch(tmp_path / "holiday.mp4", 30), touch(tmp_path / "detector.pt", 30),
              touch(tmp_path / "models" / "versions" / "v0001" / "detector.pt", 30),
              touch(tmp_path / "sub" / "x.mp4.events.jsonl", 30)]  # subfolders are not searched
    removed = prune_outputs(tmp_path, 7, keep=[tmp_path / "camera0.mp4"])
    assert sorted(removed) == sorted(old + [mixed])
    assert not any(p.exists() for p in old) and not (tmp_path / "monday.mp4.snapshots").exists()
    assert all(p.exists() for p in new + live + others)


def test_the_job_prunes_at_start_and_says_what_it_removed(tmp_path, shared_dir):
    old = run_files(tmp_path, "last_month.mp4", 40)
    done = subprocess.run([sys.executable, str(ROOT / "cctv_mask_detector.py"), "--footage_path",
                           str(shared_dir / "data" / "footage" / "channy_in.gif"), "--output_path",
                           str(tmp_path / "today.mp4"), "--retention_days", "30", "--no_voice", "--quiet",
                           "--max_frames", "2", "--threads", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "retention: removed 7 files: last_month.mp4, " in done.stdout + done.stderr
    assert "(older than 30 days) from" in done.stdout + done.stderr
    assert not any(p.exists() for p in old) and (tmp_path / "today.mp4").is_file()
    bad = subprocess.run([sys.executable, str(ROOT / "cctv_mask_detector.py"), "--footage_path", "0",
                          "--output_path", str(tmp_path / "x.mp4"), "--retention_days", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --retention_days must be above 0, got 0.0"


def make_batch(work, uncertain, frames, age_days):
    for name in frames:
        touch(uncertain / f"{name}.jpg.json", 0, "{}")
        touch(uncertain / f"{name}.jpg", 0)
    batch = take_batch(uncertain, work / "batches", sorted(uncertain.glob("*.jpg")), History(work / "h.jsonl", echo=False))
    moment = time.time() - age_days * DAY
    for p in [batch.folder, *batch.folder.rglob("*")]:
        os.utime(p, (moment, moment))
    return batch


def test_the_loop_removes_old_batches_and_frames_and_logs_them(tmp_path):
    work, uncertain, models = tmp_path / "work", tmp_path / "work" / "uncertain", tmp_path / "models"
    uncertain.mkdir(parents=True)
    touch(models / "detector.pt", 90)
    old = make_batch(work, uncertain, ["cam-frame1", "cam-frame2"], 20)
    recent = make_batch(work, uncertain, ["cam-frame3"], 1)
    waiting_old = [touch(uncertain / "cam-frame9.jpg.json", 20, "{}"), touch(uncertain / "cam-frame9.jpg", 20)]
    waiting_new = [touch(uncertain / "cam-frame10.jpg.json", 0, "{}"), touch(uncertain / "cam-frame10.jpg", 0)]
    outputs = tmp_path / "outputs"
    old_run = run_files(outputs, "entrance.mp4", 20)
    active_learning.run("run", workdir=str(work), models_dir=str(models), retention_days=14,
                        outputs_dir=str(outputs), batch_frames=50, progress=False)
    assert [b.name for b in list_batches(work / "batches")] == [recent.name]
    assert (work / "batches" / f".{old.name}.removed").is_dir()  # its number stays taken
    assert not any(p.exists() for p in waiting_old + old_run) and all(p.exists() for p in waiting_new)
    assert (models / "detector.pt").is_file()
    lines = [json.loads(x) for x in (work / "history.jsonl").read_text().splitlines()]
    retention = [x for x in lines if x["step"] == "retention"]
    assert len(retention) == 1 and retention[0]["batches"] == [old.name]
    assert retention[0]["frames"] == ["cam-frame9.jpg"] and len(retention[0]["files"]) == len(old_run)
    nxt = make_batch(work, uncertain, ["cam-frame11"], 0)
    assert int(nxt.name) == int(recent.name) + 1  # a removed batch's number is never given again


def test_nothing_is_removed_without_retention(tmp_path):
    old = run_files(tmp_path, "old.mp4", 400)
    assert prune_outputs(tmp_path, None) == [] and all(p.exists() for p in old)
    assert prune_labeling(tmp_path / "batches", tmp_path / "uncertain", None) == {"batches": [], "frames": []}
