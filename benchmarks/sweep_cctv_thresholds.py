"""How the CCTV detector's thresholds were chosen, on data it never trained on: the labeled training photos
that train_cctv_models.py's --max_frames left out (every 4th: recall, false boxes per photo, AP) and 30 frames
of one_by_one_people.mp4 (boxes per frame; people mostly turned away). PNet/RNet pairs by rows, the ONet
threshold as cuts of one low-threshold run. The pretrained MTCNN at the same min_face_size for reference.

    .venv/bin/python benchmarks/sweep_cctv_thresholds.py [--mtcnn_model_path models/cctv_mtcnn.pt]
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402

from cctv.cctv_models import CCTV_MIN_FACE_SIZE, SHIPPED_MTCNN  # noqa: E402
from cctv.cctv_training import load_sources  # noqa: E402
from cctv.model_eval import ModelSpec, predict, threshold_sweep  # noqa: E402
from cctv.threads import set_threads  # noqa: E402
from cctv.video import read_frames  # noqa: E402

TRAINED_FRAMES = 1800  # train_cctv_models.py --max_frames
CUTS = (0.7, 0.8, 0.9, 0.95, 0.98)


def left_out_photos():
    sources = load_sources(SHARED)
    train = sources["moxa3k"][0] + sources["facemask853"][0]
    used = set(np.unique(np.linspace(0, len(train) - 1, TRAINED_FRAMES).round().astype(int)).tolist())
    return [item for i, item in enumerate(train) if i not in used][::4]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mtcnn_model_path", default=str(ROOT / SHIPPED_MTCNN))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    set_threads(args.threads)
    photos = left_out_photos()
    room = list(read_frames(SHARED / "data/footage/one_by_one_people.mp4", start=7, step=47))
    truths = [(i.boxes, list(i.classes)) for i in photos]
    print(f"{len(photos)} photos left out of training, {len(room)} room frames; faces >= {CCTV_MIN_FACE_SIZE} px")
    print(f"{'model':<11} {'pnet':>4} {'rnet':>4} {'onet':>4} {'AP':>5} {'recall':>6} {'masked':>6} {'unmasked':>8} "
          f"{'false/photo':>11} {'room boxes/frame':>16}")
    for name, weights, pairs in (("pretrained", None, [(0.6, 0.7)]),
                                 ("cctv", args.mtcnn_model_path, [(0.6, 0.7), (0.7, 0.8), (0.8, 0.9)])):
        for pnet, rnet in pairs:
            spec = ModelSpec(name, weights, CCTV_MIN_FACE_SIZE, (pnet, rnet, min(CUTS)))
            predictions = predict(spec, photos, progress=False)
            detector = spec.build()
            room_scores = [detector.detect(f)[1] for f in room]
            for cut, m in threshold_sweep(predictions, truths, CUTS, min_size=CCTV_MIN_FACE_SIZE):
                boxes = np.mean([(s >= cut).sum() for s in room_scores])
                print(f"{name:<11} {pnet:>4} {rnet:>4} {cut:>4} {100 * m.ap50:5.1f} {100 * m.recall:6.1f} "
                      f"{100 * m.recall_per_class.get('protected', 0):6.1f} {100 * m.recall_per_class.get('unprotected', 0):8.1f} "
                      f"{m.false_per_frame:11.3f} {boxes:16.2f}", flush=True)


if __name__ == "__main__":
    main()
