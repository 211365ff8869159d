"""First-run cost of the face-crop pass (MTCNN once per image, as train_mask_detector.py and test_detector.py do
on a new dataset): detection on the full image vs on a copy no larger than DETECT_MAX_SIDE, each on a fresh
cache, alternating the two over rounds. Prints seconds, images/s and faces found.

    python benchmarks/bench_face_crops.py --folders ../shared/data/mask_classification mask_dataset/facemask853/test
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cctv.face_dataset as fd  # noqa: E402

FULL = 10 ** 6  # no downscaling: how it ran before
DOWNSCALED = fd.DETECT_MAX_SIDE


def one_pass(folder, max_side):
    fd.DETECT_MAX_SIDE = max_side
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        faces = fd.face_crops_from_folder(folder, cache_dir=cache, progress=False)
        return time.perf_counter() - start, len(faces), len(faces.no_face)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folders", nargs="+", required=True, help="class folders (with_mask/ + without_mask/, ...)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    opt = p.parse_args()
    import torch

    torch.set_num_threads(opt.threads)
    rows = []
    for folder in opt.folders:
        for _ in range(opt.rounds):
            for label, side in (("full image", FULL), (f"<= {DOWNSCALED} px", DOWNSCALED)):
                seconds, n, no_face = one_pass(folder, side)
                rows.append((folder, label, n, seconds, n / seconds, n - no_face))
                print(f"{folder}  {label}: {seconds:.1f} s", flush=True)
    print(f"\n{'folder':<45} {'detection on':<12} {'images':>6} {'seconds':>8} {'img/s':>6} {'faces found':>11}")
    for folder, label, n, seconds, rate, found in rows:
        print(f"{folder:<45} {label:<12} {n:>6} {seconds:>8.1f} {rate:>6.1f} {found:>11}")


if __name__ == "__main__":
    main()
