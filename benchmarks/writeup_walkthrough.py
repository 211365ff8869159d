"""The original write-up, step by step, as a new user follows it (with the README beside it), in a fresh copy of
the repo: its commands in order, on ../shared, with short epochs. Checks that every step exits 0 with output a
user can act on, and that the shipped models survive (in the copy, kept beside what replaced them; in the real
repo, untouched). Prints each step's time (first-run times: nothing cached) and a summary table.

    python benchmarks/writeup_walkthrough.py                    # about 10-15 minutes on 2 busy cores
    python benchmarks/writeup_walkthrough.py --workdir /tmp/wu --keep --num_epochs 2

The Suite is the loopback stand-in (python -m cctv.suite_standin); its labels are our pre-labels (the stand-in
has no labeling app). channy_in.gif is only watched, never trained on (evaluation footage).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cctv.model_safety import backup_path, file_sha256, shipped_models  # noqa: E402

PROJECT = "cctv-mask-detector"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv*", "runs", "mask_dataset", "__pycache__", ".pytest_cache",
                                     "versions", "current.json", "*.prev.pt", "*.shipped.pt", ".gpu", ".whl")


@dataclass
class Step:
    name: str
    command: list
    expect: list = field(default_factory=list)  # regexes the output must hold (what tells the user what happened)
    cwd: str = "."
    code: int = 0
    seconds: float = 0.0
    output: str = ""
    said: str = ""  # its last line on stdout (progress bars go to stderr)
    missing: list = field(default_factory=list)

    @property
    def ok(self):
        return self.code == 0 and not self.missing and "Traceback" not in self.output


def readable(text):
    """The output as a user reads it in a terminal: each progress bar's last state only."""
    lines = (line.rstrip("\r").split("\r")[-1].rstrip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def run_step(step, work, env, log_dir):
    start = time.perf_counter()
    done = subprocess.run(step.command, cwd=work / step.cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    step.seconds, step.code = time.perf_counter() - start, done.returncode
    step.output = readable(done.stdout + done.stderr)
    step.said = next((ln for ln in reversed(readable(done.stdout).splitlines()) if ln.strip()), "")
    step.missing = [p for p in step.expect if not re.search(p, step.output)]
    (log_dir / f"{step.name}.txt").write_text(f"$ {' '.join(map(str, step.command))}\n{step.output}\n")
    flag = "ok" if step.ok else f"FAILED (exit {step.code}, missing {step.missing})"
    print(f"[{step.seconds:6.0f} s] {step.name}: {flag}", flush=True)
    return step


def start_standin(work, env):
    """The Suite stand-in on a free port; its labels come back SUBMITTED (as if labeled). Returns (process, env)."""
    proc = subprocess.Popen([sys.executable, "-m", "cctv.suite_standin", "--port", "0", "--project", PROJECT,
                             "--label_status", "SUBMITTED"], cwd=work, env=env, stdout=subprocess.PIPE, text=True)
    endpoint = proc.stdout.readline().split()[3].rstrip(",")
    return proc, dict(env, SPB_APP_API_ENDPOINT=endpoint, SPB_TEAM_NAME="team", SPB_ACCESS_KEY="key",
                      NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


def shipped_state(work) -> list:
    """[(shipped model, where an intact copy is, or None)] in the walkthrough's copy of the repo."""
    rows = []
    for name, entry in shipped_models(work / "models" / "SHIPPED.json").items():  # the list the copy came with
        path = work / name
        places = [p for p in (path, backup_path(path, True)) if p.is_file() and file_sha256(p) == entry["sha256"]]
        rows.append((name, places[0].relative_to(work).as_posix() if places else None))
    return rows


def steps_of_the_writeup(shared, epochs):
    py = sys.executable
    data = shared / "data"
    export_2020 = "labels/meta/cctv-mask-detector-live-data"
    channy = str(data / "footage" / "channy_in.gif")
    verdict = r"(WORSE|not worse)"
    return [
        # Project & data setup: the write-up split the Kaggle folder by hand (500 per class to train/)
        Step("01-prepare", [py, "prepare_mask_dataset.py", f"--source_path={data}/mask_classification",
                            "--output_path=mask_dataset", "--train_per_class=500"], [r"train\s+500\s+500"]),
        # The README's second data set (labeled photos): the shipped model was tested on its test faces
        Step("01-prepare-facemask853", [py, "prepare_mask_dataset.py", f"--labels_dir={data}/facemask853/annotations",
                                        f"--images_dir={data}/facemask853/images",
                                        "--output_path=mask_dataset/facemask853"], [r"left out: \d+ of 4072"]),
        # Train Mask Detection Classifier (the write-up's flags; --num_epochs shortened)
        Step("02-train", [py, "train_mask_detector.py", "--train_examples_path=mask_dataset/train",
                          "--train_dataset_size_per_class=500", "--batch_size_per_class=4", f"--num_epochs={epochs}",
                          "--detector_model_output_path=models/detector.pt"],
             [r"detecting faces in \d+ new images, once", r"it replaced the shipped model \(models/detector\.pt\), "
              r"kept as models/detector\.shipped\.pt", r"mask_dataset/test\s+\S+ -> \S+",
              r"mask_dataset/facemask853/test\s+\S+ -> \S+", verdict,
              r"to go back: cp models/detector\.shipped\.pt models/detector\.pt"]),
        # Sanity Check
        Step("03-test", [py, "test_detector.py", "--detector_model_path=models/detector.pt",
                         "--test_examples_path=mask_dataset/test"], [r"All done!", r"Accuracy: \d\.\d\d"]),
        # Preliminary Testing (watching channy_in is evaluation, as the write-up does)
        Step("04-watch", [py, "cctv_mask_detector.py", "--detector_model_path=models/detector.pt",
                          f"--footage_path={channy}", "--output_path=annotated_footages/annotated_channy_in.mp4",
                          "--no_voice"],
             [r"classifier: models/detector\.pt \(accuracy", r"MTCNN: pretrained weights", r"frames/s"]),
        # Finetuning: frames for the Suite (+ pre-labels), upload, download
        Step("05-frames", [py, "footages_to_frames.py", "--footage_dir=footages", "--output_dir=footages_frames",
                           "--frames_per_extract=10", "--pre_labels"], [r"four_people_masking"]),
        Step("06-upload", [py, "-m", "cctv.suite_cli", "upload", "dataset", "-p", PROJECT, "-n",
                           "cctv-mask-detector-live-data", "--include-label", "-y", "-d", "footages_frames"],
             [r"Successful upload of (\d+) out of \1 labels"]),
        Step("07-download", [py, "-m", "cctv.suite_cli", "download", "-p", PROJECT, "-d", "suite_download", "-y"],
             [r"Successful download of (\d+) out of \1 data"]),
        # The write-up's fine-tuning command, on a 2020-era export (its layout: labels/meta/..., labels/labels)
        Step("08-finetune-writeup", [py, "finetune_mtcnn.py", f"--metadata_dir={export_2020}",
                                     "--labels_dir=labels/labels", f"--images_dir={data}/facemask853/images",
                                     "--batch_size=8", "--num_epochs=1", "--mtcnn_model_output_path=models/mtcnn.pt"],
             [r"(wrote models/mtcnn\.pt \(a new file|not written: models/mtcnn\.pt does not exist)"]),
        # The README's round trip: fine-tune on what spb download brought back, into the shipped model's path
        Step("09-finetune-readme", [py, "finetune_mtcnn.py", "--labels_dir=suite_download",
                                    "--images_dir=suite_download", "--batch_size=8", "--num_epochs=1",
                                    "--mtcnn_model_output_path=models/finetuned_mtcnn.pt"],
             [r"models/finetuned_mtcnn\.pt \(now\)",
              r"(it replaced the shipped model \(models/finetuned_mtcnn\.pt\)|still holds the shipped model)"]),
        Step("10-status", [py, "active_learning.py", "status"], [r"uncertain frames waiting: 0"]),
    ]


def watch_finetuned(work):
    """The write-up's last run: the fine-tuned MTCNN if step 08 wrote one (it writes only a better one)."""
    mtcnn = ["--mtcnn_model_path=models/mtcnn.pt"] if (work / "models" / "mtcnn.pt").is_file() else []
    return Step("11-watch-finetuned", [sys.executable, "cctv_mask_detector.py", *mtcnn,
                                       "--detector_model_path=models/detector.pt",
                                       f"--footage_path={work / 'channy_in.gif'}",
                                       "--output_path=annotated_footages/annotated_channy_in.mp4", "--no_voice"],
                [r"MTCNN: models/mtcnn\.pt" if mtcnn else r"MTCNN: pretrained weights", r"frames/s"])


def prepare_copy(work, shared):
    shutil.copytree(ROOT, work, ignore=COPY_IGNORE, dirs_exist_ok=True)
    (work / "footages").mkdir()
    os.symlink(shared / "data" / "footage" / "four_people_masking.mp4", work / "footages" / "four_people_masking.mp4")
    os.symlink(shared / "data" / "footage" / "channy_in.gif", work / "channy_in.gif")
    os.symlink(shared / "data" / "suite_exports" / "facemask853_2020_format", work / "labels")
    for folder in ("annotated_footages", "footages_frames"):  # the write-up's mkdir steps
        (work / folder).mkdir()


def walk(work, shared, epochs):
    """Run every step; returns (steps, shipped-model rows)."""
    prepare_copy(work, shared)
    log_dir = work / "walkthrough_logs"
    log_dir.mkdir()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1", HOME=str(work / "home"))
    env.pop("SPB_APP_API_ENDPOINT", None)
    standin, suite_env = start_standin(work, env)
    done = []
    try:
        for step in steps_of_the_writeup(shared, epochs):
            step_env = suite_env if step.name in ("06-upload", "07-download") else env
            done.append(run_step(step, work, step_env, log_dir))
        done.append(run_step(watch_finetuned(work), work, env, log_dir))
    finally:
        standin.terminate()
        standin.wait(timeout=10)
    return done, shipped_state(work)


def report(steps, shipped, work) -> str:
    lines = [f"{'step':<22} {'exit':>4} {'seconds':>8}  what it said last"]
    for s in steps:
        lines.append(f"{s.name:<22} {s.code:>4} {s.seconds:>8.0f}  {s.said[:100]}" + ("" if s.ok else "   <-- FAILED"))
    lines.append("")
    for name, where in shipped:
        lines.append(f"shipped {name}: " + (f"intact at {where}" if where else "LOST"))
    real = [(n, e) for n, e in shipped_models(ROOT / "models" / "SHIPPED.json").items()]
    lines.append("real repo models untouched: " + str(all(file_sha256(ROOT / n) == e["sha256"] for n, e in real)))
    lines.append(f"logs: {work / 'walkthrough_logs'}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"), help="the shared data folder")
    p.add_argument("--workdir", default=None, help="where the repo copy goes (default: a temporary folder)")
    p.add_argument("--num_epochs", type=int, default=2, help="classifier epochs (the write-up says 50)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    opt = p.parse_args(argv)
    shared = Path(opt.shared).resolve()
    if not (shared / "data").is_dir():
        print(f"error: {shared}: the shared data folder is not there", file=sys.stderr)
        return 2
    work = Path(opt.workdir or tempfile.mkdtemp(prefix="writeup-"))
    if work.exists() and any(work.iterdir()):
        print(f"error: {work}: not empty", file=sys.stderr)
        return 2
    try:
        steps, shipped = walk(work, shared, opt.num_epochs)
        print("\n" + report(steps, shipped, work))
        (work / "walkthrough_logs" / "summary.json").write_text(json.dumps(
            [{"step": s.name, "exit": s.code, "seconds": round(s.seconds, 1), "missing": s.missing} for s in steps],
            indent=1))
        ok = all(s.ok for s in steps) and all(where for _, where in shipped)
        return 0 if ok else 1
    finally:
        if not opt.keep and opt.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
