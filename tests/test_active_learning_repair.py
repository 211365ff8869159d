"""The active-learning loop's files when something broke them: a torn history line, a truncated or hand-broken
models/current.json, a truncated batch.json or plan.json, two sites sharing one models folder (issue #15,
items 6 and 11). Each is said in one line, and `run` repairs what can be rebuilt."""
import json
import shutil
from pathlib import Path

import pytest

import active_learning
from cctv import model_registry as registry
from cctv.active_learning.journal import History, RunLock

ROOT = Path(__file__).resolve().parents[1]


def cli(argv, capsys, module=active_learning):
    """(exit code, stdout, stderr lines) of a script's main."""
    code = 0
    try:
        module.main(module.parse_opt([str(a) for a in argv]))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err.strip().splitlines()


def site(tmp_path, versions=(("v0001", "promoted"), ("v0002", "rejected"))):
    """A work folder and a models folder holding committed versions (the shipped classifier as their weights)."""
    work, models = tmp_path / "work", tmp_path / "models"
    (work / "uncertain").mkdir(parents=True)
    models.mkdir()
    shutil.copy(ROOT / "models" / "detector.pt", models / "detector.pt")
    for name, decision in versions:
        folder = models / "versions" / name
        folder.mkdir(parents=True)
        shutil.copy(ROOT / "models" / "detector.pt", folder / "detector.pt")
        (folder / "metrics.json").write_text(json.dumps({"version": name, "decision": decision, "batches": []}))
    return work, models


def al_args(work, models):
    return ["--workdir", work, "--models_dir", models, "--no_progress"]


def steps(work):
    return [e["step"] for e in History(work / "history.jsonl").entries()]


# --- item 6: history.jsonl ------------------------------------------------------------------------------
def test_a_torn_last_history_line_does_not_swallow_the_next_entry(tmp_path):
    history = History(tmp_path / "history.jsonl", echo=False)
    history.log("run-start")
    with open(tmp_path / "history.jsonl", "a") as f:
        f.write('{"time": "2026-01-01T00:00:00", "step": "batch-cre')  # killed mid-write
    history.log("run-start")
    history.log("run-end")
    assert [e["step"] for e in history.entries()] == ["run-start", "run-start", "run-end"]


# --- item 6 and 11: models/current.json -----------------------------------------------------------------
BROKEN_POINTERS = {
    "truncated": '{"version": "v0001", "detector": "versions/v00',
    "non-string path": '{"version": "v0001", "detector": 5, "mtcnn": null}',
    "not an object": '["versions/v0001/detector.pt"]',
}


@pytest.mark.parametrize("case", sorted(BROKEN_POINTERS))
def test_a_broken_current_pointer_stops_the_main_job_with_one_line(case, tmp_path, capsys, monkeypatch):
    import cctv_mask_detector

    work, models = site(tmp_path)
    (models / "current.json").write_text(BROKEN_POINTERS[case])
    monkeypatch.chdir(tmp_path)  # the job's default models folder is ./models
    monkeypatch.setattr(cctv_mask_detector, "run_job", lambda cfg, *_: pytest.fail(f"ran with {cfg.detector_model_path}"))
    code, _, err = cli(["--footage_path", "x.mp4"], capsys, cctv_mask_detector)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: models/current.json: "), err
    assert "active_learning.py run" in err[0]  # says how to repair it


@pytest.mark.parametrize("case", sorted(BROKEN_POINTERS))
def test_status_shows_a_broken_pointer_and_run_repairs_it_from_the_last_promoted_version(case, tmp_path, capsys):
    work, models = site(tmp_path)
    (models / "current.json").write_text(BROKEN_POINTERS[case])
    code, out, err = cli(["status"] + al_args(work, models), capsys)
    assert code == 2 and err[-1].startswith(f"error: {models / 'current.json'}: "), err
    assert "v0001    promoted" in out  # the rest of the state is still shown

    code, out, err = cli(["run"] + al_args(work, models), capsys)
    assert code == 0, err
    assert registry.current_version(models) == "v0001"  # v0002 was rejected: v0001 is the last promoted
    assert "pointer-repaired" in steps(work)
    assert registry.current_model_paths(models)[0] == str(models / "versions" / "v0001" / "detector.pt")
    assert cli(["status"] + al_args(work, models), capsys)[0] == 0


def test_a_broken_pointer_with_no_promoted_version_is_removed_loudly(tmp_path, capsys):
    work, models = site(tmp_path, versions=(("v0001", "rejected"),))
    (models / "current.json").write_text(BROKEN_POINTERS["truncated"])
    code, out, err = cli(["run"] + al_args(work, models), capsys)
    assert code == 0, err
    assert any("current.json" in line and "warning" in line for line in err), err
    assert registry.current_model_paths(models) == (str(models / "detector.pt"), None)


# --- item 11: a truncated committed batch.json ----------------------------------------------------------
def make_batch(work, shared_dir, name="0001", frames=2, labeled=False):
    export = shared_dir / "data" / "suite_exports" / "facemask853_spb_download" / "facemask853"
    batch = work / "batches" / name
    (batch / "frames").mkdir(parents=True)
    picked = sorted(export.glob("*.jpg"))[:frames]
    for jpg in picked:
        shutil.copy(jpg, batch / "frames" / jpg.name)
        shutil.copy(export / (jpg.name + ".json"), batch / "frames" / (jpg.name + ".json"))
    (batch / "batch.json").write_text(json.dumps({"batch": name, "frames": [p.name for p in picked]}))
    if labeled:
        shutil.copytree(batch / "frames", batch / "labels")
    return batch


def test_a_truncated_batch_manifest_is_one_line_in_status_and_run_rebuilds_it(shared_dir, tmp_path, capsys):
    work, models = site(tmp_path, versions=())
    batch = make_batch(work, shared_dir)
    frames = json.loads((batch / "batch.json").read_text())["frames"]
    (batch / "batch.json").write_text('{"batch": "0001", "fra')
    code, out, err = cli(["status"] + al_args(work, models), capsys)
    assert code == 2 and err[-1].startswith(f"error: {batch / 'batch.json'}: "), err
    assert "0001" in out

    code, out, err = cli(["run"] + al_args(work, models), capsys)
    assert code == 0, err
    assert json.loads((batch / "batch.json").read_text())["frames"] == frames
    assert "batch-manifest-repaired" in steps(work)
    code, out, err = cli(["status"] + al_args(work, models), capsys)
    assert code == 0 and "0001   awaiting labels                 2" in out, out


# --- item 6: a corrupt plan.json of a half-done round ---------------------------------------------------
def test_a_corrupt_plan_discards_the_partial_round_and_plans_it_again(shared_dir, tmp_path, capsys, monkeypatch):
    import cctv.active_learning.loop as loop

    work, models = site(tmp_path, versions=())
    make_batch(work, shared_dir, labeled=True)
    partial = models / "versions" / ".v0001.partial"
    partial.mkdir(parents=True)
    (partial / "plan.json").write_text('{"version": "v0001", "batc')
    (partial / "mtcnn.pt").write_bytes(b"made under the corrupt plan")
    planned = []
    monkeypatch.setattr(loop, "_run_round", lambda cfg, p, history: planned.append(
        json.loads((p / "plan.json").read_text())) or None)
    for _ in range(2):  # not once: every later run must work too
        code, out, err = cli(["run", "--labels_settle_s", "0"] + al_args(work, models), capsys)
        assert code == 0, err
    assert "round-discarded" in steps(work)
    assert planned[0]["batches"] == ["0001"] and planned[0]["version"] == "v0001"
    assert not (partial / "mtcnn.pt").exists()  # nothing made under the corrupt plan is used


# --- item 6: two sites, one models folder --------------------------------------------------------------
def test_two_sites_sharing_a_models_folder_take_turns(tmp_path, capsys):
    work_a, models = site(tmp_path)
    work_b = tmp_path / "work_b"
    lock = RunLock(models / ".lock")  # what site A's run holds while it runs
    assert lock.acquire()
    try:
        code, out, err = cli(["run"] + al_args(work_b, models), capsys)
        assert code == 0 and "another active_learning.py run holds" in out and str(models) in out, (out, err)
        assert not (work_b / "history.jsonl").exists() or "run-start" not in steps(work_b)
    finally:
        lock.release()
    code, out, err = cli(["run"] + al_args(work_b, models), capsys)
    assert code == 0 and "run-start" in steps(work_b)


def test_one_folder_as_both_work_and_models_folder_still_runs(tmp_path, capsys):
    work, models = site(tmp_path)
    code, out, err = cli(["run", "--workdir", models, "--models_dir", models, "--no_progress"], capsys)
    assert code == 0 and "another" not in out, (out, err)
