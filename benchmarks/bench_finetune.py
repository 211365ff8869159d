"""MTCNN fine-tuning on facemask853: the pretrained cascade vs the fine-tuned one, same frames, same threads.

Fixed 80/20 split of the 853 labeled photos (the full Suite export in ../shared), default settings of
finetune_mtcnn.py. Prints the before/after table on the 171 held-out photos (faces of 20 px and more are
scored), the issue's targets, and a look at the write-up's CCTV footage that neither model trained on
(one masked person per frame).

    .venv/bin/python benchmarks/bench_finetune.py [--threads 2] [--save models/finetuned_mtcnn.pt]
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402

from cctv.atomic import save_torch  # noqa: E402
from cctv.model_safety import keep_previous  # noqa: E402
from cctv.finetune.run import load_labeled_frames  # noqa: E402
from cctv.finetune.train import FinetuneSettings, checkpoint, checkpoint_meta, finetune, split_frames, summary  # noqa: E402
from cctv.threads import set_threads  # noqa: E402

EXPORT = SHARED / "data/suite_exports/facemask853"
IMAGES = SHARED / "data/facemask853/images"
FOOTAGE = [SHARED / "data/footage/channy_in.gif", SHARED / "data/footage/channy_out.gif"]


def gif_frames(path):
    from PIL import Image, ImageSequence

    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def footage_row(detector):
    """Per clip: frames where a face was found / frames, and boxes per frame (one person is in view)."""
    out = {}
    for path in FOOTAGE:
        frames = gif_frames(path)
        counts = [len(detector.detect(f)[0]) for f in frames]
        out[path.name] = (sum(c > 0 for c in counts), len(frames), float(np.mean(counts)))
    return out


def targets_table(before, after, seconds):
    masked, bare = after.recall_per_class.get("protected", 0), after.recall_per_class.get("unprotected", 0)
    rows = [
        ("AP@0.5 gain >= 5 points", f"{100 * (after.ap50 - before.ap50):+.1f}", after.ap50 - before.ap50 >= 0.05),
        ("false detections/frame not higher", f"{before.false_per_frame:.3f} -> {after.false_per_frame:.3f}",
         after.false_per_frame <= before.false_per_frame),
        ("masked recall within 3 points of unmasked", f"{100 * masked:.1f} vs {100 * bare:.1f}",
         masked >= bare - 0.03),
        ("fine-tuning within 20 min", f"{seconds / 60:.1f} min", seconds <= 20 * 60),
    ]
    lines = [f"{'target':<42} {'measured':>16}  met", "-" * 64]
    lines += [f"{name:<42} {value:>16}  {'yes' if ok else 'NO'}" for name, value, ok in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is for 2 cores)")
    ap.add_argument("--save", default=None, help="write the fine-tuned checkpoint here if it is better")
    ap.add_argument("--epochs", type=int, default=None, help="override the default number of epochs")
    args = ap.parse_args()
    if not EXPORT.is_dir() or not IMAGES.is_dir():
        sys.exit(f"../shared not found: {EXPORT} and {IMAGES} are needed")
    set_threads(args.threads)
    from mtcnn import MTCNN

    items = load_labeled_frames(EXPORT, images_dir=IMAGES)
    train_items, val_items = split_frames(items, 0.2, seed=0)
    settings = FinetuneSettings() if args.epochs is None else FinetuneSettings(num_epochs=args.epochs)
    print(f"facemask853: {len(train_items)} training / {len(val_items)} validation photos; "
          f"stages {','.join(settings.stages)}, {settings.num_epochs} epochs, batch {settings.batch_size} frames, "
          f"{args.threads} threads")
    pretrained = MTCNN(keep_all=True)
    footage_before = footage_row(pretrained)
    detector = MTCNN(keep_all=True)
    start = time.perf_counter()
    result = finetune(detector, train_items, val_items, settings)
    seconds = time.perf_counter() - start
    footage_after = footage_row(detector)

    print("\nvalidation photos (AP, recall, precision, recall per class in %):")
    print(summary(result))
    print("\nCCTV footage never trained on (frames with a face / frames, boxes per frame):")
    for name in footage_before:
        (fb, n, bb), (fa, _, ba) = footage_before[name], footage_after[name]
        print(f"  {name:<16} pretrained {fb:>2}/{n} frames, {bb:.2f} boxes/frame   "
              f"fine-tuned {fa:>2}/{n} frames, {ba:.2f} boxes/frame")
    print(f"\n{targets_table(result.before, result.after, seconds)}")
    print(f"\nfine-tuning incl. mining and both evaluations: {seconds:.0f} s")
    if args.save:
        if result.better:
            meta = checkpoint_meta(result, settings, detector, {
                "labels": "facemask853 Suite export", "train_frames": len(train_items), "val_frames": len(val_items),
                "val_fraction": 0.2, "started_from": "pretrained"})
            kept = keep_previous(args.save)
            save_torch(checkpoint(detector, meta), args.save)
            print(f"wrote {args.save}" + (f"; the model it replaced is kept as {kept.backup}" if kept else ""))
        else:
            print(f"not better: {args.save} not written")


if __name__ == "__main__":
    main()
