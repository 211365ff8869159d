"""Where a batch's time goes in our MTCNN cascade: upload and integral image, PNet stage (pyramid, PNet,
candidates, NMS), RNet, ONet; in IEEE fp32 (what detect() runs) and, on a GPU, also with TF32 for comparison.

    python benchmarks/profile_cascade.py --device cuda --batch 32
"""
import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import torch  # noqa: E402

from benchmarks.bench_mtcnn import CLIPS, sample_frames  # noqa: E402
from cctv.threads import set_threads  # noqa: E402
from mtcnn import MTCNN  # noqa: E402
from mtcnn import cascade  # noqa: E402
from mtcnn.detector import full_fp32  # noqa: E402


def parse_opt():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared_dir", default=str(ROOT.parent / "shared"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="frames per batch (default 1 on cpu, 32 on cuda)")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes; each stage keeps its best")
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args()


def time_stages(mtcnn, frames, repeats):
    """Best seconds per stage over `repeats` passes of the cascade detect() runs, and the candidates left
    after each stage (laps taken by detect_batch's on_stage hook, the device synchronised at each)."""
    sync = torch.cuda.synchronize if mtcnn.device.type == "cuda" else (lambda: None)
    best, counts = {}, {}
    for _ in range(repeats):
        times = {}
        sync()
        start = [time.perf_counter()]

        def lap(name, found):
            sync()
            now = time.perf_counter()
            times[name], start[0] = now - start[0], now
            counts[name] = len(found)

        integral = mtcnn._integral(frames)
        lap("upload+integral", frames)
        cascade.detect_batch(mtcnn._nets, integral, mtcnn.min_face_size, mtcnn.thresholds, mtcnn.factor,
                             on_stage=lambda name, found: lap(f"{name} stage", found))
        best = {k: min(best.get(k, float("inf")), v) for k, v in times.items()}
    return best, counts


@contextmanager
def tf32():
    """cuDNN's and cuBLAS's TF32 (not what detect() runs), for comparison."""
    knobs = [torch.backends.cudnn.conv, torch.backends.cuda.matmul]
    saved = [k.fp32_precision for k in knobs]
    for k in knobs:
        k.fp32_precision = "tf32"
    try:
        yield
    finally:
        for k, value in zip(knobs, saved):
            k.fp32_precision = value


def run(shared_dir, device="cpu", batch=None, repeats=5, threads=2):
    set_threads(threads, device)
    batch = batch or (1 if device == "cpu" else 32)
    mtcnn = MTCNN(keep_all=True, device=device)
    modes = [("ieee fp32", full_fp32)] + ([("tf32", tf32)] if device.startswith("cuda") else [])
    print(f"\nMTCNN cascade by stage, device={device}, batch={batch}, torch {torch.__version__}, best of {repeats}")
    print("| clip | precision | upload+integral ms | pnet stage ms | rnet stage ms | onet stage ms | total ms | "
          "frames/s | candidates pnet / rnet / final |")
    print("|---|---|---|---|---|---|---|---|---|")
    for clip in CLIPS:
        frames = sample_frames(Path(shared_dir) / "data" / "footage" / clip, batch)
        for name, precision in modes:
            with torch.inference_mode(), precision():
                time_stages(mtcnn, frames, 1)  # warm-up
                best, counts = time_stages(mtcnn, frames, repeats)
            total = sum(best.values())
            ms = " | ".join(f"{v * 1e3:.1f}" for v in best.values())
            print(f"| {clip} x{len(frames)} | {name} | {ms} | {total * 1e3:.1f} | {len(frames) / total:.0f} | "
                  f"{counts['pnet stage']} / {counts['rnet stage']} / {counts['onet stage']} |")


if __name__ == "__main__":
    run(**vars(parse_opt()))
