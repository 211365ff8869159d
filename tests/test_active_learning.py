"""active_learning.py: uncertain frames -> batches -> labels -> fine-tuned candidates -> evaluated -> promoted or
rejected, safe against a kill -9 between any two steps and against frames written while a batch is taken.

Frames are real: the CCTV job (`cctv_mask_detector.run --uncertain_frames_dir`) on the write-up's footage
saves its low-confidence frames with pre-label sidecars; real human labels come from the `spb download`
export in ../shared (images beside `<image>.json` Suite labels: the same layout the CCTV job writes)."""
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import active_learning
from cctv import model_registry as registry
from cctv.active_learning.batches import complete_frames, list_batches
from cctv.active_learning.journal import History, RunLock
from cctv.labels import load_labels

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(batch_frames=5, labels_settle_s=0, mtcnn_epochs=1, mtcnn_stages="onet", classifier_epochs=1,
            max_train_frames=6, progress=False, threads=2)


@pytest.fixture(scope="module")
def captured(shared_dir, tmp_path_factory):
    """A classifier (untrained: its outputs sit near 0.5, so the CCTV job finds frames uncertain), the
    CCTV job's uncertain frames from channy_in.gif, and 6 human-labeled frames from the shared export."""
    import torch

    import cctv_mask_detector
    from cctv.classifier import MaskClassifier, build_network, save_classifier

    root = tmp_path_factory.mktemp("captured")
    torch.manual_seed(0)
    save_classifier(MaskClassifier(build_network("small"), "small"), root / "detector.pt")
    cctv_mask_detector.run(footage_path=str(shared_dir / "data" / "footage" / "channy_in.gif"),
                           output_path=str(root / "out.mp4"), detector_model_path=str(root / "detector.pt"),
                           uncertain_frames_dir=str(root / "cctv"), uncertain_max_per_second=100,
                           uncertain_margin=0.5, no_voice=True, quiet=True)
    export = shared_dir / "data" / "suite_exports" / "facemask853_spb_download" / "facemask853"
    (root / "human").mkdir()
    for jpg in sorted(export.glob("*.jpg"))[:6]:
        shutil.copy(jpg, root / "human" / jpg.name)
        shutil.copy(export / (jpg.name + ".json"), root / "human" / (jpg.name + ".json"))
    assert len(complete_frames(root / "cctv")) >= 5
    return root


def setup_site(captured, tmp_path, sources=("cctv", "human")):
    """A work folder whose uncertain folder holds the captured frames, and models/ with detector.pt."""
    work, models = tmp_path / "work", tmp_path / "models"
    (work / "uncertain").mkdir(parents=True)
    models.mkdir()
    shutil.copy(captured / "detector.pt", models / "detector.pt")
    for source in sources:
        for f in sorted((captured / source).iterdir()):
            shutil.copy(f, work / "uncertain" / f.name)
    return dict(workdir=str(work), models_dir=str(models))


def drop_labels(site):
    """A person labels every batch: here they accept the frames' labels as they are (the CCTV job's
    pre-labels, the export's human labels) and drop them in as the batch's labels/ folder."""
    for batch in list_batches(Path(site["workdir"]) / "batches"):
        if not batch.labels_dir.exists():
            shutil.copytree(batch.frames_dir, batch.folder / ".drop")
            os.rename(batch.folder / ".drop", batch.labels_dir)


def frame_places(site) -> dict:
    """frame name -> every place (uncertain, a batch, a half-built batch) its JPEG is found, checking each
    has its sidecar (a kill may stop a batch between moving a sidecar and its JPEG: only there a sidecar
    may be without its JPEG, and the next run finishes the move)."""
    places = {}
    work = Path(site["workdir"])
    folders = [("uncertain", work / "uncertain")] + [(b.name, b.frames_dir) for b in list_batches(work / "batches")]
    folders += [(p.name, p / "frames") for p in (work / "batches").glob(".*.partial")]
    for where, folder in folders:
        for jpg in folder.glob("*.jpg"):
            assert (folder / (jpg.name + ".json")).is_file(), f"{jpg} without its sidecar"
            places.setdefault(jpg.name, []).append(where)
    return places


def steps(site):
    return [e["step"] for e in History(Path(site["workdir"]) / "history.jsonl").entries()]


def spoil_candidates(monkeypatch):
    """Every candidate the next round saves is made worse on purpose, so that the loop must reject it: its ONet
    never says "face", its classifier gives the opposite answer."""
    import torch

    import cctv.classifier
    import cctv.finetune.train

    real_checkpoint, real_save = cctv.finetune.train.checkpoint, cctv.classifier.save_classifier

    def checkpoint(detector, meta):
        with torch.no_grad():
            for name, param in detector.onet.named_parameters():
                if name.endswith("bias") and param.shape == (2,):
                    param.copy_(torch.tensor([50.0, -50.0]))
        return real_checkpoint(detector, meta)

    def save_classifier(clf, path):
        with torch.no_grad():
            for p in list(clf.network.parameters())[-2:]:
                p.mul_(-1.0)
        return real_save(clf, path)

    monkeypatch.setattr(cctv.finetune.train, "checkpoint", checkpoint)
    monkeypatch.setattr(cctv.classifier, "save_classifier", save_classifier)


def test_batches_labels_finetune_promote_then_reject_a_worse_candidate(captured, tmp_path, monkeypatch):
    site = setup_site(captured, tmp_path)
    names = {p.name for p in complete_frames(Path(site["workdir"]) / "uncertain")}
    n_batches = len(names) // 5

    out = active_learning.run("run", **site, **TINY)
    assert len(out["batches"]) == n_batches and out["versions"] == []
    batches = list_batches(Path(site["workdir"]) / "batches")
    assert [len(b.frame_names()) for b in batches] == [5] * n_batches
    places = frame_places(site)
    assert set(places) == names and all(len(p) == 1 for p in places.values())
    assert len(complete_frames(Path(site["workdir"]) / "uncertain")) == len(names) - 5 * n_batches
    # pre-labels travel with the frames: each batch is itself a readable labels folder
    assert len(load_labels(batches[0].frames_dir).items) == 5
    assert active_learning.run("run", **site, **TINY)["versions"] == []  # no labels yet: nothing to train

    drop_labels(site)
    out = active_learning.run("run", **site, **TINY)
    assert out["versions"] == ["v0001"]
    metrics = registry.read_metrics(Path(site["models_dir"]) / "versions" / "v0001")
    assert metrics["decision"] == "promoted", metrics["reason"]
    assert metrics["batches"] == [b.name for b in batches]
    assert metrics["eval_frames"] >= n_batches  # a held-back frame of each batch
    assert metrics["candidate"]["detection"]["ap50"] >= metrics["current"]["detection"]["ap50"]
    detector, mtcnn = registry.current_model_paths(site["models_dir"])
    assert detector.endswith("versions/v0001/detector.pt") and mtcnn.endswith("versions/v0001/mtcnn.pt")
    from cctv.pipeline import MaskPipeline

    MaskPipeline.load(detector, mtcnn)  # the promoted pair loads as the CCTV job loads it
    import cctv_mask_detector

    used = {}
    monkeypatch.setattr(cctv_mask_detector, "run_job", lambda cfg, *_: used.update(vars(cfg)))
    monkeypatch.chdir(tmp_path)  # where models/ is: the CCTV job's default models are the promoted ones
    cctv_mask_detector.main(cctv_mask_detector.parse_opt(["--footage_path", "x.mp4"]))
    assert (used["detector_model_path"], used["mtcnn_model_path"]) == (
        "models/versions/v0001/detector.pt", "models/versions/v0001/mtcnn.pt")
    monkeypatch.chdir(ROOT)

    # more frames arrive (a second pass of the camera), labeled; this candidate is spoiled on purpose
    for f in sorted((captured / "cctv").iterdir()):
        shutil.copy(f, Path(site["workdir"]) / "uncertain" / ("b-" + f.name))
    active_learning.run("run", **site, **TINY)
    drop_labels(site)
    with monkeypatch.context() as spoiled:
        spoil_candidates(spoiled)
        out = active_learning.run("run", **site, **TINY)
    assert out["versions"] == ["v0002"]
    metrics = registry.read_metrics(Path(site["models_dir"]) / "versions" / "v0002")
    assert metrics["decision"] == "rejected" and "got worse" in metrics["reason"]
    assert registry.current_version(site["models_dir"]) == "v0001"  # the live models did not change
    assert (Path(site["models_dir"]) / "versions" / "v0002" / "detector.pt").is_file()  # kept, with metrics

    assert active_learning.run("run", **site, **TINY)["versions"] == []  # a rejected round is not retried
    text = active_learning.run("status", **site, **TINY)
    assert "v0001*   promoted" in text and "v0002    rejected" in text
    assert "current: v0001" in text
    for step in ("batch-created", "round-planned", "mtcnn-trained", "classifier-trained", "evaluated",
                 "version-committed", "promoted"):
        assert step in steps(site)


def run_cli(site, kill_after=None):
    """active_learning.py run in a subprocess; with kill_after, SIGKILLed right after that step (through the
    test-only launcher tests/al_kill_launcher.py)."""
    launch = [str(ROOT / "tests" / "al_kill_launcher.py"), kill_after] if kill_after else [str(ROOT / "active_learning.py")]
    args = [sys.executable, *launch, "run", "--workdir", site["workdir"], "--models_dir", site["models_dir"]]
    for k, v in TINY.items():
        if k == "progress":
            args.append("--no_progress")
        else:
            args += [f"--{k}", str(v)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_a_kill_between_any_two_steps_loses_nothing_and_the_next_run_resumes(captured, tmp_path):
    site = setup_site(captured, tmp_path)
    names = {p.name for p in complete_frames(Path(site["workdir"]) / "uncertain")}
    models = Path(site["models_dir"])

    # killed after the first frame of a batch moved: the next run finishes the half-moved batch
    done = run_cli(site, "batch-first-frame-moved")
    assert done.returncode == -9, done.stderr
    assert any(p.name.endswith(".partial") for p in (Path(site["workdir"]) / "batches").iterdir())
    places = frame_places(site)
    assert set(places) == names and all(len(p) == 1 for p in places.values())
    done = run_cli(site)
    assert done.returncode == 0, done.stderr
    assert "batch-resume" in steps(site)
    places = frame_places(site)
    assert set(places) == names and all(len(p) == 1 for p in places.values())
    drop_labels(site)

    done = run_cli(site, "mtcnn-trained")  # killed mid-round, after the MTCNN candidate was saved
    assert done.returncode == -9, done.stderr
    assert registry.current_version(models) is None and list((models / "versions").glob(".v0001.partial/mtcnn.pt"))

    done = run_cli(site, "version-committed")  # killed between keeping the version and swapping the pointer
    assert done.returncode == -9, done.stderr
    assert registry.current_version(models) is None
    assert "round-resume" in steps(site) and steps(site).count("mtcnn-trained") == 1  # not trained twice

    done = run_cli(site)
    assert done.returncode == 0, done.stderr
    assert registry.current_version(models) == "v0001"  # the promotion the kill interrupted is completed
    assert json.loads((models / "current.json").read_text())["version"] == "v0001"
    assert not [p for p in (models / "versions").iterdir() if p.name.startswith(".")]
    assert not [p for p in (Path(site["workdir"]) / "batches").rglob(".*")]  # no partials or temp files left
    places = frame_places(site)
    assert set(places) == names and all(len(p) == 1 for p in places.values())


def test_frames_written_while_batches_are_taken_are_never_lost_or_split(captured, tmp_path):
    from cctv.uncertain import UncertainFrameSaver
    from cctv.images import load_image

    site = setup_site(captured, tmp_path, sources=())
    uncertain = Path(site["workdir"]) / "uncertain"
    frame = load_image(sorted((captured / "cctv").glob("*.jpg"))[0])
    saver = UncertainFrameSaver(uncertain, "cam")
    boxes, probs = np.array([[10, 10, 60, 60]], np.float32), np.array([0.5], np.float32)
    written, stop = [], threading.Event()

    def camera():
        for i in range(120):
            written.append(saver.save(frame, i, boxes, probs).name)
        stop.set()

    thread = threading.Thread(target=camera)
    thread.start()
    while not stop.is_set():
        active_learning.run("run", **site, batch_frames=3, labels_settle_s=0, progress=False)
    thread.join()
    active_learning.run("run", **site, batch_frames=3, labels_settle_s=0, progress=False)
    places = frame_places(site)  # also checks every JPEG has its sidecar beside it
    assert sorted(places) == sorted(written) and all(len(p) == 1 for p in places.values())
    assert len(list_batches(Path(site["workdir"]) / "batches")) == 40
    for batch in list_batches(Path(site["workdir"]) / "batches"):
        assert not [p for p in batch.frames_dir.iterdir() if p.name.startswith(".")]  # no temp files taken
        assert sorted(p.name for p in batch.frames_dir.glob("*.jpg")) == sorted(batch.frame_names())


def test_a_second_run_while_one_holds_the_lock_exits_quietly(tmp_path, capsys):
    site = dict(workdir=str(tmp_path / "work"), models_dir=str(tmp_path / "models"))
    lock = RunLock(tmp_path / "work" / ".lock")
    assert lock.acquire()
    try:
        assert active_learning.run("run", **site)["busy"] is True
        assert "another active_learning.py run holds" in capsys.readouterr().out
        done = subprocess.run([sys.executable, str(ROOT / "active_learning.py"), "run", "--workdir", site["workdir"]],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "another active_learning.py run holds" in done.stdout
    finally:
        lock.release()
    assert active_learning.run("run", **site)["busy"] is False


def test_unreadable_labels_are_reported_and_wait_for_a_fix(captured, tmp_path):
    site = setup_site(captured, tmp_path, sources=("human",))
    active_learning.run("run", **site, **TINY)
    batch = list_batches(Path(site["workdir"]) / "batches")[0]
    batch.labels_dir.mkdir()
    (batch.labels_dir / "notes.txt").write_text("done!\n")  # not labels
    assert active_learning.run("run", **site, **TINY)["versions"] == []
    assert "labels-unreadable" in steps(site)


def test_current_pointer_falls_back_and_cli_errors_are_one_line(tmp_path):
    assert registry.current_model_paths(tmp_path) == (str(tmp_path / "detector.pt"), None)
    (tmp_path / "current.json").write_text('{"version": "v0009", "detector": "versions/v0009/detector.pt"}')
    assert registry.current_model_paths(tmp_path)[0] == str(tmp_path / "detector.pt")  # its files are missing
    done = subprocess.run([sys.executable, str(ROOT / "active_learning.py"), "run", "--workdir",
                           str(tmp_path / "w"), "--batch_frames", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "error: --batch_frames must be at least 1, got 0"


def test_batches_go_to_the_suite_with_pre_labels_and_come_back_labeled(captured, tmp_path, monkeypatch, shared_dir):
    """The real spb CLI against the loopback Suite stand-in: each batch is uploaded as dataset batch-<N> with
    its pre-labels; labels still being worked on are not taken; done ones land in the batch's labels/."""
    from cctv.suite_standin import SuiteStandIn

    from cctv.active_learning.suite_sync import SpbConfig, download_ready_labels

    spb = Path(sys.executable).parent / "spb"
    if not spb.is_file():
        pytest.skip(f"{spb} not found: install spb-cli (scripts/setup_env.sh)")
    site = setup_site(captured, tmp_path, sources=("human",))
    interface = json.loads((shared_dir / "data" / "suite_exports" / "facemask853_spb_download" /
                            "project.json").read_text())
    with SuiteStandIn("entrance-cam", interface) as suite:
        for key, value in dict(SPB_APP_API_ENDPOINT=suite.endpoint, SPB_TEAM_NAME="team", SPB_ACCESS_KEY="key",
                               HOME=str(tmp_path), NO_PROXY="127.0.0.1,localhost",
                               no_proxy="127.0.0.1,localhost").items():
            monkeypatch.setenv(key, value)
        out = active_learning.run("run", **site, **TINY, spb_project="entrance-cam")
        assert out["versions"] == []  # the stand-in's labels are WORKING, not SUBMITTED: nothing to train
        batch = list_batches(Path(site["workdir"]) / "batches")[0]
        assert batch.uploaded and "batch-uploaded" in steps(site) and not batch.labels_dir.exists()
        assert sorted(k for d, k in suite.labels if d == "batch-0001") == sorted(batch.frame_names())

        got = download_ready_labels(SpbConfig("entrance-cam", ready_statuses=("WORKING",)), [batch],
                                    tmp_path / "scratch")
    assert got == [batch] and batch.labels_ready()
    labeled = {Path(i.image_path).name: i for i in load_labels(batch.labels_dir).items}
    pre = {Path(i.image_path).name: i for i in load_labels(batch.frames_dir).items}
    assert sorted(labeled) == sorted(pre)
    for name, item in labeled.items():
        np.testing.assert_allclose(item.boxes, pre[name].boxes, atol=1e-3)
