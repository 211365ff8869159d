"""The CCTV models against the pretrained MTCNN and the earlier shipped models: issue #14's target table.

- channy_in.gif / channy_out.gif (evaluation footage, never trained on; face centres hand-labeled in
  benchmarks/data/footage_faces): frames where the face is found, other boxes per frame, class of the found faces
- Moxa3K held-out 15% (by file name), faces >= 10 px; facemask853 test photos (80/20, seed 0), faces >= 20 px
- the classifier on a source it was not trained on (recorded in the checkpoint by train_cctv_models.py)
- detection time, CCTV model vs pretrained at the same settings, alternating rounds

    .venv/bin/python benchmarks/bench_cctv_models.py [--threads 2] [--skip_photos]
    .venv/bin/python benchmarks/bench_cctv_models.py --classifiers models/cctv_classifier.pt new.pt [--margins 0 8 16]
    .venv/bin/python benchmarks/bench_cctv_models.py --mtcnn_model_path runs/refined/cctv_mtcnn.pt [--skip_baselines]
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
from cctv.tables import format_table  # noqa: E402
from cctv.threads import set_threads  # noqa: E402

LABELS = ROOT / "benchmarks/data/footage_faces"
OLD_MTCNN, OLD_CLASSIFIER = "models/finetuned_mtcnn.pt", "models/detector.pt"
CHANNY_OUT_FRAMES = range(3, 13)


def detector_specs(candidate=None, baselines=True):
    """(spec, classifier path) pairs: what the main job ran before, the alternatives (baselines), the new models,
    and a candidate CCTV MTCNN (a retrained cctv_mtcnn.pt, with the shipped CCTV classifier)."""
    classifier = SHIPPED_CLASSIFIER if (ROOT / SHIPPED_CLASSIFIER).is_file() else OLD_CLASSIFIER
    rows = []
    if baselines:
        default = ModelSpec("pretrained (default)", None, 20, (0.6, 0.7, 0.7))
        rows.append((default, OLD_CLASSIFIER))
        if classifier == SHIPPED_CLASSIFIER:  # the CCTV classifier as the main job's default classifier
            rows.append((default, SHIPPED_CLASSIFIER))
        rows += [(ModelSpec("pretrained @10", None, CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS), OLD_CLASSIFIER),
                 (spec_from_checkpoint("finetuned_mtcnn (old)", ROOT / OLD_MTCNN), OLD_CLASSIFIER)]
    if (ROOT / SHIPPED_MTCNN).is_file():
        cctv_spec = spec_from_checkpoint("cctv_mtcnn (new)", ROOT / SHIPPED_MTCNN)
        rows += ([(cctv_spec, OLD_CLASSIFIER)] if baselines else []) + [(cctv_spec, classifier)]
    if candidate:
        rows.append((spec_from_checkpoint(f"candidate {Path(candidate).parent.name}", Path(candidate)), classifier))
    return rows


def load_clips():
    """{name: (face-centre labels, frames)} of the evaluation footage."""
    return {name: (load_footage_labels(LABELS / f"{name}.json"), read_clip(SHARED / "data/footage" / f"{name}.gif"))
            for name in ("channy_in", "channy_out")}


def footage_cells(clips, boxes, clf, margin=None):
    """Per clip: (found, frames, other boxes per frame, the found faces' right class as 'NN%'), `boxes` the
    detector's per clip and frame; crops as the main job cuts them (the classifier's size and margin)."""
    from mtcnn import crop_faces

    size = int(clf.mtcnn_settings.get("image_size", clf.input_size))
    margin = clf.mtcnn_settings.get("margin", 0) if margin is None else margin
    cells = []
    for name, (labels, frames) in clips.items():
        protected = [clf.predict(crop_faces(f, b, size, margin)) >= 0.5 if len(b) else np.zeros(0, bool)
                     for f, b in zip(frames, boxes[name])]
        scope = CHANNY_OUT_FRAMES if name == "channy_out" else None
        s = score_footage(labels, boxes[name], protected, scope)
        n = len(scope) if scope else len(frames)
        share = s.protected_found if name == "channy_in" else s.found - s.protected_found
        cells.append((f"{s.found}/{n}", f"{s.other_per_frame:.2f}", f"{100 * share / s.found:.0f}%" if s.found else "-"))
    return cells


def detect_clips(clips, spec):
    detector = spec.build()
    return {name: [detector.detect(f)[0] for f in frames] for name, (_, frames) in clips.items()}


def footage_table(rows):
    from cctv.classifier import load_classifier

    clips = load_clips()
    head = (f"{'detector':<24} {'classifier':<20} {'in: found':>9} {'other/fr':>8} {'protected':>9} "
            f"{'out 3-12: found':>15} {'other/fr':>8} {'unprotected':>11}")
    lines = [head, "-" * len(head)]
    for spec, classifier_path in rows:
        (a, b, c), (d, e, f) = footage_cells(clips, detect_clips(clips, spec), load_classifier(ROOT / classifier_path))
        lines.append(f"{spec.name:<24} {Path(classifier_path).name:<20} {a:>9} {b:>8} {c:>9} {d:>15} {e:>8} {f:>11}")
    lines.append("targets: channy_in found >= 17/20, <= 0.2 other boxes/frame, >= 90% protected; "
                 "channy_out found >= 6 of frames 3-12, called unprotected")
    return "\n".join(lines)


def classifiers_table(paths, cache_dir, margins=(None,)):
    """Classifiers side by side: the faces the CCTV detector finds in the footage (at each crop margin), and
    accuracy / recall of each class on every source's test faces (classifier_sources' splits)."""
    from cctv.cctv_models import classifier_sources
    from cctv.classifier import load_classifier
    from cctv.mask_metrics import evaluate_classifier

    clips = load_clips()
    boxes = detect_clips(clips, spec_from_checkpoint("cctv_mtcnn", ROOT / SHIPPED_MTCNN))
    tests = {}  # crop margin -> {source: test faces cut with it}

    def test_sets(margin):
        if margin not in tests:
            tests[margin] = {name: test for name, (_, test) in
                             classifier_sources(SHARED, cache_dir, margin=margin, progress=False).items()}
        return tests[margin]

    header = ["classifier", "margin", "in: protected", "out 3-12: unprot."] + [
        f"{name} acc / prot / unprot" for name in test_sets(0)]
    rows = []
    for path in paths:
        clf = load_classifier(path)
        own = clf.mtcnn_settings.get("margin", 0)
        scores = {name: evaluate_classifier(clf, test) for name, test in test_sets(own).items()}
        for k, margin in enumerate(margins):
            (found_in, _, prot), (found_out, _, unprot) = footage_cells(clips, boxes, clf, margin)
            rows.append([str(path), own if margin is None else margin, f"{prot} of {found_in.split('/')[0]}",
                         f"{unprot} of {found_out.split('/')[0]}"]
                        + ([_class_cells(m) for m in scores.values()] if k == 0 else [""] * len(scores)))
    lines = [format_table(header, rows, rule=True)]
    lines.append("faces: the CCTV MTCNN's boxes on channy_* (never trained on); test faces per source ("
                 "cut at each classifier's own margin): " + ", ".join(f"{n} {len(t)}" for n, t in test_sets(0).items()))
    return "\n".join(lines)


def _class_cells(m):
    negatives = m["num_true_negative"] + m["num_false_positive"]
    unprotected_recall = m["num_true_negative"] / negatives if negatives else float("nan")
    return f"{m['accuracy']:.3f} / {m['recall']:.3f} / {unprotected_recall:.3f}"


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


def speed_table(rounds=3, candidate=None):
    """Detection ms per frame at the CCTV settings, pretrained vs CCTV weights (and a candidate's), alternating
    rounds, on the channy frames and facemask853 test photos."""
    from cctv.cctv_training import load_sources
    from cctv.images import load_image

    frames = read_clip(SHARED / "data/footage/channy_in.gif") + [
        load_image(i.image_path) for i in load_sources(SHARED)["facemask853"][1][:40]]
    models = {"pretrained": ModelSpec("pretrained", None, CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS).build(),
              "cctv": spec_from_checkpoint("cctv", ROOT / SHIPPED_MTCNN).build()}
    if candidate:
        models["candidate"] = spec_from_checkpoint("candidate", Path(candidate)).build()
    for model in models.values():
        model.min_face_size, model.thresholds = CCTV_MIN_FACE_SIZE, list(CCTV_THRESHOLDS)
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
            + "".join(f"  {name} {ms:.1f} ms, {ms / best['pretrained']:.2f}x" for name, ms in best.items() if name != "pretrained")
            + f"  (pretrained {best['pretrained']:.1f} ms; target <= 1.3x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip_photos", action="store_true", help="footage, classifier and speed only")
    ap.add_argument("--classifiers", nargs="+", default=None,
                    help="compare these classifiers on the footage and each source's test faces, and stop")
    ap.add_argument("--margins", nargs="+", type=int, default=None,
                    help="with --classifiers: crop margins (px of the crop) to try on the footage "
                         "(default: each classifier's own)")
    ap.add_argument("--cache_dir", default="runs/cctv_train", help="the test faces train_cctv_models.py cached")
    ap.add_argument("--mtcnn_model_path", default=None,
                    help="a candidate CCTV MTCNN (e.g. train_cctv_models.py's output elsewhere) beside the shipped one")
    ap.add_argument("--skip_baselines", action="store_true",
                    help="only the CCTV rows (shipped and candidate): the pretrained and old rows are in RESULTS.md")
    args = ap.parse_args()
    if not (SHARED / "data").is_dir():
        sys.exit(f"../shared not found: {SHARED}")
    set_threads(args.threads)
    if args.classifiers:
        missing = [p for p in args.classifiers if not Path(p).is_file()]
        if missing:
            sys.exit(f"error: --classifiers: {missing[0]}: no such file")
        print(classifiers_table(args.classifiers, args.cache_dir, args.margins or (None,)))
        return
    if args.mtcnn_model_path and not Path(args.mtcnn_model_path).is_file():
        sys.exit(f"error: --mtcnn_model_path: {args.mtcnn_model_path}: no such file")
    rows = detector_specs(args.mtcnn_model_path, baselines=not args.skip_baselines)
    print("CCTV footage (hand-labeled face centres; never trained on):")
    print(footage_table(rows))
    if not args.skip_photos:
        print()
        print(photo_tables(rows))
    print("\nclassifier on faces of a source it was not trained on (from the checkpoint):")
    print(classifier_table())
    if (ROOT / SHIPPED_MTCNN).is_file():
        print()
        print(speed_table(candidate=args.mtcnn_model_path))


if __name__ == "__main__":
    main()
