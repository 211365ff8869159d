"""The CCTV models against the pretrained MTCNN and the earlier shipped models: issue #14's target table.

- channy_in.gif / channy_out.gif (evaluation footage, never trained on; face centres hand-labeled in
  benchmarks/data/footage_faces): frames where the face is found, other boxes per frame, class of the found faces
- Moxa3K held-out 15% (by file name), faces >= 10 px; facemask853 test photos (80/20, seed 0), faces >= 20 px
- the classifier on a source it was not trained on (recorded in the checkpoint by train_cctv_models.py)
- detection time, CCTV model vs pretrained at the same settings, alternating rounds

    .venv/bin/python benchmarks/bench_cctv_models.py [--threads 2] [--skip_photos]
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

from cctv.cctv_models import CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS, SHIPPED_CLASSIFIER, SHIPPED_MTCNN  # noqa: E402
from cctv.footage_eval import load_footage_labels, read_clip, score_footage  # noqa: E402
from cctv.model_eval import ModelSpec, compare, format_comparison, spec_from_checkpoint  # noqa: E402
from cctv.threads import set_threads  # noqa: E402

LABELS = ROOT / "benchmarks/data/footage_faces"
OLD_MTCNN, OLD_CLASSIFIER = "models/finetuned_mtcnn.pt", "models/detector.pt"
CHANNY_OUT_FRAMES = range(3, 13)


def detector_specs():
    """(spec, classifier path) pairs: what the main job ran before, the alternatives, the new models."""
    pretrained_small = (ModelSpec("pretrained @10", None, CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS), OLD_CLASSIFIER)
    rows = [(ModelSpec("pretrained (default)", None, 20, (0.6, 0.7, 0.7)), OLD_CLASSIFIER),
            pretrained_small,
            (spec_from_checkpoint("finetuned_mtcnn (old)", ROOT / OLD_MTCNN), OLD_CLASSIFIER)]
    if (ROOT / SHIPPED_MTCNN).is_file():
        classifier = SHIPPED_CLASSIFIER if (ROOT / SHIPPED_CLASSIFIER).is_file() else OLD_CLASSIFIER
        cctv_spec = spec_from_checkpoint("cctv_mtcnn (new)", ROOT / SHIPPED_MTCNN)
        rows += [(cctv_spec, OLD_CLASSIFIER), (cctv_spec, classifier)]
    return rows


def footage_table(rows):
    from mtcnn import crop_faces

    from cctv.classifier import load_classifier

    clips = {name: (load_footage_labels(LABELS / f"{name}.json"), read_clip(SHARED / "data/footage" / f"{name}.gif"))
             for name in ("channy_in", "channy_out")}
    head = (f"{'detector':<24} {'classifier':<20} {'in: found':>9} {'other/fr':>8} {'protected':>9} "
            f"{'out 3-12: found':>15} {'other/fr':>8} {'unprotected':>11}")
    lines = [head, "-" * len(head)]
    for spec, classifier_path in rows:
        detector, clf = spec.build(), load_classifier(ROOT / classifier_path)
        size = int(clf.mtcnn_settings.get("image_size", clf.input_size))
        cells = []
        for name, (labels, frames) in clips.items():
            boxes = [detector.detect(f)[0] for f in frames]
            protected = [clf.predict(crop_faces(f, b, size, 0)) >= 0.5 if len(b) else np.zeros(0, bool)
                         for f, b in zip(frames, boxes)]
            scope = CHANNY_OUT_FRAMES if name == "channy_out" else None
            s = score_footage(labels, boxes, protected, scope)
            n = len(scope) if scope else len(frames)
            share = s.protected_found if name == "channy_in" else s.found - s.protected_found
            cells.append((f"{s.found}/{n}", f"{s.other_per_frame:.2f}",
                          f"{100 * share / s.found:.0f}%" if s.found else "-"))
        (a, b, c), (d, e, f) = cells
        lines.append(f"{spec.name:<24} {Path(classifier_path).name:<20} {a:>9} {b:>8} {c:>9} {d:>15} {e:>8} {f:>11}")
    lines.append("targets: channy_in found >= 17/20, <= 0.2 other boxes/frame, >= 90% protected; "
                 "channy_out found >= 6 of frames 3-12, called unprotected")
    return "\n".join(lines)


def photo_tables(rows):
    from cctv.cctv_training import load_sources

    sources = load_sources(SHARED)
    specs = list({spec.name: spec for spec, _ in rows}.values())
    out = []
    for name, items, min_size in (("Moxa3K held-out 15%", sources["moxa3k"][1], 10),
                                  ("facemask853 test 20%", sources["facemask853"][1], 20)):
        results = compare(specs, items, min_size=min_size)
        out.append(f"{name}: {len(items)} images, faces >= {min_size} px scored\n{format_comparison(results, specs)}")
    return "\n\n".join(out)


def classifier_table():
    from cctv.classifier import load_classifier

    if not (ROOT / SHIPPED_CLASSIFIER).is_file():
        return "(no shipped CCTV classifier yet)"
    tests = load_classifier(ROOT / SHIPPED_CLASSIFIER).metadata.get("test_metrics", [])
    lines = [f"{'test faces':<22} {'trained on':<32} {'faces':>6} {'accuracy':>8} {'recall prot.':>12} {'recall unprot.':>14}"]
    for t in tests:
        negatives = t["num_true_negative"] + t["num_false_positive"]
        unprotected_recall = t["num_true_negative"] / negatives if negatives else float("nan")
        lines.append(f"{t['source']:<22} {t['trained_on']:<32} {t['faces']:>6} {t['accuracy']:>8.3f} "
                     f"{t['recall']:>12.3f} {unprotected_recall:>14.3f}")
    return "\n".join(lines)


def speed_table(rounds=3):
    """Detection ms per frame at the CCTV settings, pretrained vs CCTV weights, alternating rounds, on the
    channy frames and facemask853 test photos."""
    from cctv.cctv_training import load_sources
    from cctv.images import load_image

    frames = read_clip(SHARED / "data/footage/channy_in.gif") + [
        load_image(i.image_path) for i in load_sources(SHARED)["facemask853"][1][:40]]
    models = {"pretrained": ModelSpec("pretrained", None, CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS).build(),
              "cctv": spec_from_checkpoint("cctv", ROOT / SHIPPED_MTCNN).build()}
    models["cctv"].min_face_size, models["cctv"].thresholds = CCTV_MIN_FACE_SIZE, list(CCTV_THRESHOLDS)
    times = {k: [] for k in models}
    for _ in range(rounds):
        for name, m in models.items():
            start = time.perf_counter()
            for f in frames:
                m.detect(f)
            times[name].append(1000 * (time.perf_counter() - start) / len(frames))
    best = {k: min(v) for k, v in times.items()}
    return (f"detection ms/frame (best of {rounds} alternating rounds, {len(frames)} frames: channy_in + 40 "
            f"facemask853 photos; min_face_size {CCTV_MIN_FACE_SIZE}, thresholds {CCTV_THRESHOLDS}):\n"
            f"  pretrained {best['pretrained']:.1f}   cctv {best['cctv']:.1f}   ratio {best['cctv'] / best['pretrained']:.2f}x "
            f"(target <= 1.3x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip_photos", action="store_true", help="footage, classifier and speed only")
    args = ap.parse_args()
    if not (SHARED / "data").is_dir():
        sys.exit(f"../shared not found: {SHARED}")
    set_threads(args.threads)
    rows = detector_specs()
    print("CCTV footage (hand-labeled face centres; never trained on):")
    print(footage_table(rows))
    if not args.skip_photos:
        print()
        print(photo_tables(rows))
    print("\nclassifier on faces of a source it was not trained on (from the checkpoint):")
    print(classifier_table())
    if (ROOT / SHIPPED_MTCNN).is_file():
        print()
        print(speed_table())


if __name__ == "__main__":
    main()
