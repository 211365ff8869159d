"""Frames/s of our MTCNN.detect vs facenet-pytorch's on the clips in ../shared/data/footage.

    python benchmarks/bench_mtcnn.py --threads 2 [--facenet_python .venv-facenet/bin/python] [--device cuda]

facenet-pytorch needs torchvision, which does not import beside our torch: `make bench-env` builds a side
environment (.venv-facenet: torch 2.14.1 + torchvision 0.29.1 from this machine's disk) and the peer is
timed there, in a subprocess, on the very same frames and thread count. Without it the peer column is n/a.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cctv.threads import set_threads  # noqa: E402
from cctv.video import read_frames  # noqa: E402
from mtcnn import MTCNN  # noqa: E402

CLIPS = ["channy_in.gif", "four_people_masking.mp4", "facenet_example_1080p.mp4"]


def parse_opt():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared_dir", default=str(ROOT.parent / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16, help="frames per clip (spread over the clip)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes over the frames per round")
    ap.add_argument("--rounds", type=int, default=2,
                    help="ours then theirs, this many times; each side keeps its best (a shared machine drifts)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--batch", type=int, default=None, help="frames per call (default 1 on cpu, 16 on cuda)")
    ap.add_argument("--facenet_python", default=str(ROOT / ".venv-facenet" / "bin" / "python"))
    return ap.parse_args()


def sample_frames(path, count):
    frames = list(read_frames(path))
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return np.stack([frames[i] for i in idx])


def time_ours(frames, device, batch, repeats):
    mtcnn = MTCNN(keep_all=True, device=device)
    chunks = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    mtcnn.detect(chunks[0] if batch > 1 else chunks[0][0])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in chunks:
            mtcnn.detect(chunk if batch > 1 else chunk[0])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return len(frames) / best


def time_theirs(python, frames, threads, device, batch, repeats):
    if not shutil.which(python):
        return None, "no side environment (make bench-env)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, frames)
        cmd = [python, str(ROOT / "benchmarks" / "facenet_worker.py"), str(path), str(threads), device,
               str(batch), str(repeats)]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
    return json.loads(done.stdout.strip().splitlines()[-1])["fps"], ""


def run(shared_dir, threads=2, frames=16, repeats=2, rounds=2, device="cpu", batch=None, facenet_python=""):
    set_threads(threads, device)
    batch = batch or (16 if device.startswith("cuda") else 1)
    footage = Path(shared_dir) / "data" / "footage"
    if not footage.is_dir():
        sys.exit(f"{footage} not found: the benchmark reads the clips in ../shared")
    rows = []
    for clip in CLIPS:
        data = sample_frames(footage / clip, frames)
        ours, theirs, why = 0.0, None, ""
        for _ in range(rounds):
            ours = max(ours, time_ours(data, device, batch, repeats))
            fps, why = time_theirs(facenet_python, data, threads, device, batch, repeats)
            theirs = max(theirs or 0.0, fps) if fps else theirs
        rows.append((clip, f"{data.shape[2]}x{data.shape[1]}", len(data), ours, theirs, why))
    print(f"\nMTCNN detect, default thresholds, device={device}, threads={threads}, batch={batch}, "
          f"torch {torch.__version__}, best of {rounds} alternating rounds x {repeats} passes")
    print("| clip | size | frames | ours fps | facenet-pytorch fps | ours/theirs |")
    print("|---|---|---|---|---|---|")
    for clip, size, n, ours, theirs, why in rows:
        ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
        peer = f"{theirs:.1f}" if theirs else f"n/a ({why})"
        print(f"| {clip} | {size} | {n} | {ours:.1f} | {peer} | {ratio} |")
    return rows


if __name__ == "__main__":
    run(**vars(parse_opt()))
