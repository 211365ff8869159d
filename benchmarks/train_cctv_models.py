"""Rebuild the shipped CCTV models from ../shared with fixed seeds: models/cctv_mtcnn.pt (all three MTCNN
stages, trained on Moxa3K and facemask853 training photos made to look like ceiling-camera frames, plus
empty frames of one_by_one_people.mp4 as hard negatives) and models/cctv_classifier.pt.

    .venv/bin/python benchmarks/train_cctv_models.py [--threads 2] [--skip_detector] [--skip_classifier]

Mined windows are cached in --cache_dir (runs/cctv_train): delete it after changing the data or settings.
Never trained on: channy_in/channy_out (evaluation footage), Moxa3K's held-out 15% (by file name),
facemask853's test photos (80/20, seed 0).
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cctv.atomic import save_torch  # noqa: E402
from cctv.model_safety import keep_previous  # noqa: E402
from cctv.cctv_training import (FrameSource, cctv_sampling, load_sources, refine_with_trained_cascade,  # noqa: E402
                                room_backgrounds, train_detector)
from cctv.finetune.train import FinetuneSettings, checkpoint  # noqa: E402
from cctv.cctv_models import CCTV_MIN_FACE_SIZE, CCTV_THRESHOLDS  # noqa: E402
from cctv.errors import UserError, check_range  # noqa: E402
from cctv.threads import set_threads  # noqa: E402


MINING_THRESHOLDS, MINING_MIN_FACE_SIZE = (0.5, 0.5, 0.5), 12
SECOND_PASS_THRESHOLDS = (0.7, 0.8, 0.95)  # only PNet's and RNet's matter: they pick ONet's candidates
THRESHOLD_CHOICE = ("MTCNN's default thresholds 0.6, 0.7, 0.7. A sweep on left-out photos "
                    "(benchmarks/sweep_cctv_thresholds.py) first gave 0.7, 0.8, 0.8 (fewer false boxes on photos); on "
                    "channy_in it found 7/20 frames against 15/20 at the defaults, so the defaults are shipped (channy "
                    "was seen at both: README)")


def parse_per_stage(text, cast):
    return {k: cast(v) for k, v in (part.split("=") for part in text.split(",") if part)}


def build_detector(opt, sources, log):
    from mtcnn import MTCNN

    train_items = sources["moxa3k"][0] + sources["facemask853"][0]
    if opt.max_frames:
        pick = np.unique(np.linspace(0, len(train_items) - 1, opt.max_frames).round().astype(int))
        train_items = [train_items[i] for i in pick]
    backgrounds = room_backgrounds(Path(opt.shared) / "data/footage/one_by_one_people.mp4", opt.backgrounds, seed=0)
    source = FrameSource(train_items, versions=opt.versions, cctv_share=opt.cctv_share, backgrounds=backgrounds, seed=0)
    log(f"detector: {len(train_items)} labeled photos x {opt.versions} versions ({opt.cctv_share:.0%} CCTV-like) + "
        f"{len(backgrounds)} empty-room crops")
    # Mined with lower thresholds than it runs at: more of the cascade's near misses and false candidates.
    # and at min_face_size 12 (no enlarged pyramid levels: half the time), which PNet's 12 px window allows.
    detector = MTCNN(min_face_size=MINING_MIN_FACE_SIZE, thresholds=MINING_THRESHOLDS, keep_all=True)
    settings = FinetuneSettings(stages=tuple(opt.stages.split(",")), batch_size=opt.batch_size, lr=opt.lr,
                                num_epochs=3, seed=0, sampling=cctv_sampling(), frozen=())
    max_negatives = parse_per_stage(opt.max_negatives, int)
    start = time.perf_counter()
    if opt.resume_mtcnn:  # no first pass: the checkpoint's passes are kept in the record, the next ones added
        detector = MTCNN(min_face_size=MINING_MIN_FACE_SIZE, thresholds=MINING_THRESHOLDS, keep_all=True,
                         weights_path=opt.resume_mtcnn)
        meta = torch.load(opt.resume_mtcnn, weights_only=True).get("meta", {})
        samples = meta.get("data", {}).get("samples", {})
        result = meta.get("first_pass") or {k: [samples.get(k, {}), v] for k, v in meta.get("history", {}).items()}
    else:
        result = train_detector(detector, source, settings, opt.cache_dir, parse_per_stage(opt.epochs, int),
                                parse_per_stage(opt.stage_lr, float) if opt.stage_lr else None,
                                max_negatives, log=log)
        first = {k: [v[0], [{kk: float(vv) for kk, vv in e.items()} for e in v[1]]] for k, v in result.items()}
        save_torch(checkpoint(detector, {"first_pass": first}), Path(opt.cache_dir) / "first_pass_mtcnn.pt")
    if opt.second_pass_frames:
        # the trained cascade's own candidates for ONet (PNet/RNet thresholds of the shipped model's second pass)
        detector.thresholds = list(SECOND_PASS_THRESHOLDS)
        step = max(1, len(train_items) // opt.second_pass_frames)
        again = FrameSource(train_items[::step], versions=1, cctv_share=opt.cctv_share, backgrounds=backgrounds[::2],
                            seed=1)
        result["onet_second_pass"] = refine_with_trained_cascade(
            detector, again, "onet", settings, opt.cache_dir, epochs=1, lr=1e-4,
            max_negatives=max_negatives.get("onet"), log=log)
    for stage, frames in parse_per_stage(opt.refine, int).items():
        # a pass on the finished cascade's own candidates for this stage, mined as the model runs (tried for
        # PNet and RNet to cut the candidates reaching ONet: not shipped, RESULTS.md)
        detector.min_face_size, detector.thresholds = CCTV_MIN_FACE_SIZE, list(CCTV_THRESHOLDS)
        step = max(1, len(train_items) // frames)
        again = FrameSource(train_items[1::step], versions=1, cctv_share=opt.cctv_share, backgrounds=backgrounds[1::2],
                            seed=2)
        result[f"{stage}_refined"] = refine_with_trained_cascade(
            detector, again, stage, settings, opt.cache_dir, epochs=opt.refine_epochs, lr=opt.refine_lr,
            max_negatives=max_negatives.get(stage), tag="refined", log=log)
    seconds = time.perf_counter() - start
    meta = {"format_note": "CCTV MTCNN (benchmarks/train_cctv_models.py)", "stages_trained": list(result),
            "settings": {"thresholds": list(CCTV_THRESHOLDS), "min_face_size": float(CCTV_MIN_FACE_SIZE),
                         "factor": 0.709, "batch_size": opt.batch_size, "lr": opt.lr, "epochs": opt.epochs,
                         "versions": opt.versions, "cctv_share": opt.cctv_share,
                         "max_negatives": opt.max_negatives, "seed": 0, "threshold_choice": THRESHOLD_CHOICE},
            "data": {"train_frames": len(train_items), "backgrounds": len(backgrounds),
                     "samples": {k: v[0] for k, v in result.items()},
                     "held_out": "Moxa3K 15% by file-name hash; facemask853 test 20% (seed 0); channy_* never"},
            "history": {k: [{kk: float(vv) for kk, vv in e.items()} for e in v[1]] for k, v in result.items()},
            "seconds": round(seconds, 1)}
    kept = keep_previous(opt.mtcnn_model_output_path)
    save_torch(checkpoint(detector, meta), opt.mtcnn_model_output_path)
    log(f"wrote {opt.mtcnn_model_output_path} ({seconds / 60:.1f} min)"
        + (f"; the model it replaced is kept as {kept.backup}" if kept else ""))


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache_dir", default="runs/cctv_train")
    p.add_argument("--mtcnn_model_output_path", default="models/cctv_mtcnn.pt")
    p.add_argument("--detector_model_output_path", default="models/cctv_classifier.pt")
    p.add_argument("--stages", default="pnet,rnet,onet")
    p.add_argument("--versions", type=int, default=1, help="versions of each labeled photo")
    p.add_argument("--cctv_share", type=float, default=0.6, help="share of versions made CCTV-like")
    p.add_argument("--backgrounds", type=int, default=240, help="empty room crops (hard negatives)")
    p.add_argument("--max_negatives", default="pnet=200000,rnet=100000,onet=40000",
                   help="at most this many negative windows per stage (all positives and parts are kept)")
    p.add_argument("--batch_size", type=int, default=8, help="frames per step")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--stage_lr", default="pnet=1e-3,rnet=5e-4,onet=3e-4", help="per stage learning rates")
    p.add_argument("--epochs", default="pnet=4,rnet=4,onet=3")
    p.add_argument("--second_pass_frames", type=int, default=600,
                   help="labeled photos on which the trained cascade's ONet candidates are mined again (0: none)")
    p.add_argument("--refine", default="",
                   help="STAGE=FRAMES,...: after the second pass, train these stages again on the finished "
                        "cascade's own candidates mined on FRAMES labeled photos (e.g. rnet=900; none by default)")
    p.add_argument("--refine_epochs", type=int, default=2)
    p.add_argument("--refine_lr", type=float, default=1e-4)
    p.add_argument("--resume_mtcnn", default=None,
                   help="a first-pass checkpoint (cache_dir/first_pass_mtcnn.pt), or a finished model to train "
                        "further (with --second_pass_frames 0 --refine ...)")
    p.add_argument("--max_frames", type=int, default=1800, help="a subset of the labeled photos, evenly spread "
                   "(0: all; on 2 shared cores mining all of them took an hour)")
    p.add_argument("--classifier_epochs", type=int, default=12)
    p.add_argument("--painted_share", type=float, default=1.0,
                   help="share of the unprotected training faces that also appear with a painted mask "
                        "(cctv/mask_paint.py), labeled protected (0: none)")
    p.add_argument("--colour_cast", type=float, default=0.5,
                   help="share of the classifier's training crops given a strong warm/cool cast and underexposure "
                        "(mask_training.Augment p_cast)")
    p.add_argument("--crop_margin", type=int, default=0,
                   help="the classifier's crop margin in px of its 64 px crop (crop_faces' margin), kept in the "
                        "checkpoint for the main job")
    p.add_argument("--skip_detector", action="store_true")
    p.add_argument("--skip_classifier", action="store_true")
    return p.parse_args(argv)


def main(opt):
    check_range("--painted_share", opt.painted_share, 0, 1)
    check_range("--crop_margin", opt.crop_margin, 0, 47)
    check_range("--colour_cast", opt.colour_cast, 0, 1)
    if opt.resume_mtcnn and not Path(opt.resume_mtcnn).is_file():
        raise UserError(f"--resume_mtcnn: {opt.resume_mtcnn}: no such file")
    set_threads(opt.threads)
    torch.manual_seed(0)
    sources = load_sources(opt.shared)
    if not opt.skip_detector:
        build_detector(opt, sources, print)
    if not opt.skip_classifier:
        from cctv.cctv_models import build_classifier
        build_classifier(opt, sources, print)


if __name__ == "__main__":
    try:
        main(parse_opt())
    except UserError as e:
        sys.exit(f"error: {e}")
