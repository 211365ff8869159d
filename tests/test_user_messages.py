"""What the scripts tell a new user: what was left out, which models run, why nothing happened."""
import numpy as np

from cctv.detection_eval import short_side


def test_prepare_reports_how_many_labeled_faces_the_size_rule_left_out(shared_dir, tmp_path):
    from cctv.labels import load_labels
    from cctv.mask_dataset_prep import run_prepare

    export = shared_dir / "data/suite_exports/facemask853_2020_format"
    args = dict(labels_dir=export / "labels", metadata_dir=export / "meta/cctv-mask-detector-live-data",
                images_dir=shared_dir / "data/facemask853/images")
    items = load_labels(**args).items
    sizes = np.concatenate([short_side(item.boxes) for item in items])
    report = run_prepare(**args, output_path=tmp_path / "out", min_face_size=20, progress=False)
    written = sum(report.written.values())
    assert report.too_small == ((sizes < 20).sum(), len(sizes), 20) and written == (sizes >= 20).sum()
    assert f"left out: {(sizes < 20).sum()} of {len(sizes)}" in report.table()


def test_main_job_says_which_models_it_loaded_after_a_promotion(repo_root, shared_dir, tmp_path):
    """After active_learning.py promoted a version, the job uses it by default: it says so, with the figures."""
    import json
    import shutil
    import subprocess
    import sys

    version = tmp_path / "models" / "versions" / "v0001"
    version.mkdir(parents=True)
    shutil.copyfile(repo_root / "models" / "detector.pt", version / "detector.pt")
    shutil.copyfile(repo_root / "models" / "finetuned_mtcnn.pt", version / "mtcnn.pt")
    (version / "metrics.json").write_text(json.dumps({
        "decision": "promoted", "eval_frames": 12,
        "candidate": {"detection": {"ap50": 0.75}, "classifier": {"accuracy": 0.667}}}))
    (tmp_path / "models" / "current.json").write_text(json.dumps({
        "version": "v0001", "detector": "versions/v0001/detector.pt", "mtcnn": "versions/v0001/mtcnn.pt"}))
    r = subprocess.run([sys.executable, str(repo_root / "cctv_mask_detector.py"), "--no_voice", "--max_frames", "2",
                        "--footage_path", str(shared_dir / "data/footage/channy_in.gif"), "--output_path", "out.mp4"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("classifier: models/versions/v0001/detector.pt (version v0001, promoted: AP@0.5 75.0, "
                               "accuracy 66.7% on 12 held-out frames; shipped; accuracy 99.5% on "), lines[0]
    assert lines[1].startswith("MTCNN: models/versions/v0001/mtcnn.pt (version v0001, promoted: "), lines[1]
    assert lines[1].endswith("; shipped; AP@0.5 84.7, 0.32 false/frame on held-out frames of facemask853 Suite export)")


def _loop(repo_root, *args):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(repo_root / "active_learning.py"), *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_loop_says_what_it_waits_for_and_keeps_its_settings(repo_root, tmp_path):
    work, models = tmp_path / "work", tmp_path / "models"
    (work / "uncertain").mkdir(parents=True)
    for i in range(14):
        (work / "uncertain" / f"cam-frame{i}.jpg.json").write_text("{}")
        (work / "uncertain" / f"cam-frame{i}.jpg").write_bytes(b"jpeg")
    out = _loop(repo_root, "run", "--workdir", str(work), "--models_dir", str(models), "--batch_frames", "20")
    assert f"uncertain frames waiting: 14 of 20 for the next batch (in {work / 'uncertain'})" in out
    assert "no training this run" in out and f"settings saved in {work / 'settings.json'}" in out
    # later calls without the flag: the loop's own setting, not the built-in 50
    assert "(a batch is taken at 20)" in _loop(repo_root, "status", "--workdir", str(work), "--models_dir", str(models))
    out = _loop(repo_root, "run", "--workdir", str(work), "--models_dir", str(models))
    assert "14 of 20" in out and "settings saved" not in out
    out = _loop(repo_root, "run", "--workdir", str(work), "--models_dir", str(models), "--batch_frames", "7")
    assert "new batches: 0001, 0002" in out and "0 of 7" in out
    assert f"awaiting labels: 0001, 0002 (put each batch's labels in {work / 'batches'}/<batch>/labels/)" in out


def test_labels_renamed_into_place_are_ready_at_once_copied_ones_settle(tmp_path):
    import shutil

    from cctv.active_learning.batches import Batch

    download = tmp_path / "download"
    (download / "sub").mkdir(parents=True)
    (download / "a.jpg.json").write_text("{}")
    (download / "sub" / "b.jpg.json").write_text("{}")
    renamed, copied = Batch(tmp_path / "0001"), Batch(tmp_path / "0002")
    renamed.folder.mkdir()
    copied.folder.mkdir()
    shutil.copytree(download, copied.labels_dir)  # the files are written inside the folder, one by one
    download.rename(renamed.labels_dir)
    assert renamed.labels_ready(settle_s=60)
    assert not copied.labels_ready(settle_s=60) and copied.labels_ready(settle_s=0)
    (renamed.labels_dir / "late.json").write_text("{}")  # written into it afterwards: it settles like a copy
    assert not renamed.labels_ready(settle_s=60)
