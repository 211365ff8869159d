"""Time the write-up's training recipe (500 images per class, 50 epochs) with ours: MTCNN once per image
(cached), then training; against the write-up's way, which ran MTCNN on every image in every epoch.
Also the classifier's inference cost per face on one core (the default must stay under 1 ms).

    python benchmarks/bench_train.py --threads 2            # full recipe (a few minutes)
    python benchmarks/bench_train.py --epochs 2 --per_class 50   # smoke run

The write-up's per-epoch MTCNN cost is measured over one epoch and multiplied by the epochs (running it
50 times would take the better part of an hour); the row says so.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cctv.classifier import ARCHITECTURES, MaskClassifier, build_network  # noqa: E402
from cctv.face_dataset import face_crops_from_folder, list_examples  # noqa: E402
from cctv.mask_training import sources_table, train_classifier  # noqa: E402
from cctv.threads import set_threads  # noqa: E402

SHARED = ROOT.parent / "shared"


def timed(fn, *args, **kwargs):
    """(result, wall seconds); the CPU seconds of the last call are kept in timed.cpu."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    timed.cpu = time.process_time() - c
    return out, time.perf_counter() - t


def inference_ms_per_face(arch, batch=64, repeats=5):
    """Mean ms per face of MaskClassifier.predict on one thread (standardisation included)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    clf = MaskClassifier(build_network(arch), arch)
    crops = np.random.default_rng(0).integers(0, 256, (batch, 160, 160, 3), dtype=np.uint8)
    clf.predict(crops)
    _, seconds = timed(lambda: [clf.predict(crops) for _ in range(repeats)])
    torch.set_num_threads(threads)
    return seconds / repeats / batch * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(SHARED / "data" / "mask_classification"),
                   help="Kaggle-style folder (with_mask/, without_mask/)")
    p.add_argument("--per_class", type=int, default=500)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch_size_per_class", type=int, default=16)
    p.add_argument("--archs", nargs="+", default=sorted(ARCHITECTURES))
    p.add_argument("--threads", type=int, default=2)
    opt = p.parse_args()
    if not Path(opt.data).is_dir():
        sys.exit(f"{opt.data} not found: the benchmark reads ../shared/data/mask_classification")
    set_threads(opt.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-train-cache-") as cache:
        faces, cold = timed(face_crops_from_folder, opt.data, opt.per_class, cache_dir=cache, progress=False)
        cold_cpu = timed.cpu
        _, warm = timed(face_crops_from_folder, opt.data, opt.per_class, cache_dir=cache, progress=False)
    n_images = len(list_examples(opt.data, opt.per_class))
    print(f"{n_images} images, {len(faces)} faces ({len(faces.no_face)} with no face found, used whole), "
          f"{opt.epochs} epochs, {opt.threads} threads")
    for arch in opt.archs:
        (_, history, summary), train_s = timed(train_classifier, faces.crops, faces.labels, arch, opt.epochs,
                                               opt.batch_size_per_class, progress=False)
        train_cpu = timed.cpu
        rows.append({"method": f"ours ({arch})", "mtcnn_s": round(cold, 1), "train_s": round(train_s, 1),
                     "total_s": round(cold + train_s, 1), "total_cpu_s": round(cold_cpu + train_cpu, 1),
                     "total_warm_cache_s": round(warm + train_s, 1),
                     "val_acc": round(summary.get("val_accuracy", float("nan")), 3),
                     "infer_ms_per_face_1core": round(inference_ms_per_face(arch), 3)})
        rows.append({"method": f"write-up: MTCNN every epoch ({arch})", "mtcnn_s": round(cold * opt.epochs, 1),
                     "train_s": round(train_s, 1), "total_s": round(cold * opt.epochs + train_s, 1),
                     "total_cpu_s": round(cold_cpu * opt.epochs + train_cpu, 1), "total_warm_cache_s": "n/a",
                     "val_acc": "", "infer_ms_per_face_1core": ""})
    print(sources_table(rows))
    print("write-up rows: MTCNN time measured over one pass, times the epochs. total_cpu_s: CPU seconds of all"
          " threads (on an idle machine, wall time is about total_cpu_s / threads)")
    print("target: the recipe (500/class, 50 epochs) in <= 180 s on 2 cores; inference < 1 ms/face on 1 core")


if __name__ == "__main__":
    main()
