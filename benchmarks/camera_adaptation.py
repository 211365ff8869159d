"""Camera adaptation, before and after: MTCNN fine-tuned by finetune_mtcnn.py on a camera's own labeled frames.

The camera: one_by_one_people.mp4, a static high camera over a room where six people come in one at a time and
stand with their backs to it. The pretrained MTCNN takes backs of heads for faces, and the main job raises
false "unprotected" alerts. Its labeled frames are made as a user gets them from the Suite round trip: every
10th frame cut by footages_to_frames.py with our detections as pre-labels, then corrected the way a labeler
would, to what the hand labels (benchmarks/data/footage_faces/one_by_one_people.json) say the frame shows: no
face is visible (heads turned away), so every pre-labeled box is deleted and the label is a frame without faces.
Frames before --split_frame (people 1-4) train; the rest (people 5 and 6, 35% of the clip) are held out.

A room where no face is ever seen cannot teach faces, and finetune_mtcnn.py refuses labels without any (it
would learn that there are no faces): --face_photos labeled photos of facemask853's training part (its Suite
export) join the camera's frames, as the labeled set of a Suite project holds more than one camera.
four_people_masking.mp4 is not trained on: it is the check that another camera loses nothing.

Side by side, for each starting model (the pretrained MTCNN; models/cctv_mtcnn.pt), before | after:
boxes on the held-out frames (all false: no face is visible), the main job's alerts and boxes on the held-out
part, facemask853's test photos (AP@0.5, recall, false boxes), four_people_masking.mp4 (labeled faces found,
other boxes per frame). Everything is written under --work_dir (runs/, git-ignored).

    .venv/bin/python benchmarks/camera_adaptation.py --threads 2 [--control] [--active_learning]   # about 45 min
"""
import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
LABELS = ROOT / "benchmarks" / "data" / "footage_faces"
sys.path.insert(0, str(ROOT))

import cctv  # noqa: E402,F401 - before torch: OpenMP's passive wait policy (cctv/threads.py)
import numpy as np  # noqa: E402

from cctv.footage_eval import load_footage_labels  # noqa: E402

CAMERA = "one_by_one_people"
OTHER_CAMERA = "four_people_masking"
# Person 4 leaves the view by frame 870 and person 5 comes in at 930: a cut at 900 puts no person on both sides.
SPLIT_FRAME = 900
LOOSE_THRESHOLDS = (0.1, 0.2, 0.2)  # the write-up's thresholds for its CCTV footage


def parse_opt(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work_dir", default=str(ROOT / "runs" / "camera_adaptation"),
                   help="frames, labels, models and job outputs (never inside ../shared)")
    p.add_argument("--split_frame", type=int, default=SPLIT_FRAME,
                   help="frames of the camera before this one train, the rest are held out")
    p.add_argument("--frames_per_extract", type=int, default=10, help="every N-th frame is labeled")
    p.add_argument("--face_photos", type=int, default=80,
                   help="labeled facemask853 training photos mixed in (faces to keep finding)")
    p.add_argument("--starts", default="pretrained,cctv",
                   help="starting models: pretrained (facenet-pytorch's weights), cctv (models/cctv_mtcnn.pt)")
    p.add_argument("--num_epochs", type=int, default=5, help="finetune_mtcnn.py --num_epochs")
    p.add_argument("--stages", default="rnet,onet", help="finetune_mtcnn.py --stages")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune on the face photos alone: what the camera's frames add to that")
    p.add_argument("--active_learning", action="store_true",
                   help="also one round of active_learning.py: the job's low-confidence frames of the camera's "
                        "training part, labeled, fine-tune a version from the pretrained MTCNN")
    p.add_argument("--reuse", action="store_true", help="keep frames and adapted models already in --work_dir")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


# --- the camera's labeled frames, as the Suite round trip gives them ---------------------------------------
def visible_faces(faces):
    """(boxes, classes) a labeler draws from face-centre labels: a face whose mask state is known is visible;
    a head turned away (mask null) is not a face and gets no box."""
    shown = [f for f in faces if f.get("mask") is not None]
    boxes = [(f["x"] - f["size"] / 2, f["y"] - f["size"] / 2, f["x"] + f["size"] / 2, f["y"] + f["size"] / 2)
             for f in shown]
    return np.asarray(boxes, np.float32).reshape(-1, 4), ["protected" if f["mask"] else "unprotected" for f in shown]


def frame_index(path):
    """N of `<footage>-frame<N>.jpg` (footages_to_frames.py's names)."""
    return int(Path(path).name.rsplit("-frame", 1)[1].split(".")[0])


def correct_labels(frames_dir, footage_labels, split_frame, train_dir, heldout_dir):
    """The labeler's pass over pre-labeled frames: each labeled frame's Suite label is rewritten to its visible
    faces (none here), and frame + label move to train_dir or heldout_dir by time; frames the hand labels do not
    cover are left out. Returns {"train", "held_out", "pre-labeled boxes deleted"}."""
    from cctv.labels import write_suite_label
    from cctv.labels.common import image_size, read_json
    from cctv.labels.suite import parse_objects

    counts = {"train": 0, "held_out": 0, "pre-labeled boxes deleted": 0}
    for jpg in sorted(Path(frames_dir).glob("*.jpg"), key=frame_index):
        index = frame_index(jpg)
        if index not in footage_labels.faces:
            continue
        boxes, classes = visible_faces(footage_labels.faces[index])
        label = jpg.with_name(jpg.name + ".json")
        if label.is_file():
            counts["pre-labeled boxes deleted"] += max(0, len(parse_objects(read_json(label))[0]) - len(boxes))
        width, height = image_size(jpg)
        part = "train" if index < split_frame else "held_out"
        target = Path(train_dir if part == "train" else heldout_dir)
        target.mkdir(parents=True, exist_ok=True)
        write_suite_label(target / label.name, boxes, classes, width, height)
        shutil.copyfile(jpg, target / jpg.name)
        counts[part] += 1
    return counts


def build_camera_frames(footage, labels_path, work_dir, frames_per_extract, split_frame, pre_labels=True):
    """footage -> work_dir/frames (footages_to_frames.py, pre-labels by the shipped pipeline) -> corrected
    labels in work_dir/camera_train and work_dir/camera_held_out. Returns (train_dir, heldout_dir, counts)."""
    import footages_to_frames

    work_dir = Path(work_dir)
    footage_dir = work_dir / "footage"
    footage_dir.mkdir(parents=True, exist_ok=True)
    link = footage_dir / Path(footage).name
    if not link.exists():
        link.symlink_to(Path(footage).resolve())  # the clip stays in ../shared; only a link here
    footages_to_frames.run(footage_dir, work_dir / "frames", frames_per_extract, pre_labels=pre_labels)
    train_dir, heldout_dir = work_dir / "camera_train", work_dir / "camera_held_out"
    for d in (train_dir, heldout_dir):
        shutil.rmtree(d, ignore_errors=True)
    counts = correct_labels(work_dir / "frames", load_footage_labels(labels_path), split_frame, train_dir, heldout_dir)
    return train_dir, heldout_dir, counts


def add_face_photos(items, folder):
    """Labeled photos (LabeledImage) copied into `folder` with their labels as Suite labels beside them."""
    from cctv.labels import write_suite_label

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        target = folder / Path(item.image_path).name
        shutil.copyfile(item.image_path, target)
        write_suite_label(target.with_name(target.name + ".json"), item.boxes, item.classes, item.width, item.height)
    return len(items)


def face_photo_split(shared):
    """facemask853's (training, test) photos: the 80/20 split the other benchmarks hold out."""
    from cctv.cctv_training import facemask853_split
    from cctv.labels import load_labels

    data = Path(shared) / "data"
    items = load_labels(data / "suite_exports" / "facemask853", images_dir=data / "facemask853" / "images").items
    return facemask853_split(items)


# --- evaluation ------------------------------------------------------------------------------------------
def boxes_per_frame(spec, frames):
    """Mean boxes per frame and the share of frames with any box, on frames without faces (RGB arrays)."""
    detector = spec.build()
    counts = np.asarray([len(detector.detect(frame)[0]) for frame in frames])
    return float(counts.mean()), float((counts > 0).mean())


def job_on_camera(footage, spec, classifier, split_frame, out_dir, threads):
    """The main job on the whole clip (no video written); alerts and boxes per frame from split_frame on."""
    import cctv_mask_detector
    from cctv.alerts import read_events

    boxes = []
    out = Path(out_dir) / f"{spec.name.replace(' ', '_')}.mp4"
    summary = cctv_mask_detector.run(footage_path=str(footage), output_path=str(out), detector_model_path=classifier,
                                     mtcnn_model_path=spec.weights, record="none", no_voice=True, quiet=True,
                                     threads=threads, on_frame=lambda job, faces: boxes.append(faces.total))
    alerts = read_events(summary.events)
    return len(alerts), sum(e["frame"] >= split_frame for e in alerts), float(np.mean(boxes[split_frame:]))


def other_camera(spec, frames, labels):
    """Labeled faces found and other boxes per frame on another camera's labeled frames."""
    from cctv.footage_eval import score_footage

    detector = spec.build()
    score = score_footage(labels, {i: detector.detect(frames[i])[0] for i in labels.frames})
    return score.found, score.labeled, score.other_per_frame


def evaluate(spec, classifier, ctx, opt):
    """One model's column: {figure: value}."""
    from cctv.model_eval import compare

    row = {}
    for name, frames in (("labeled held-out frames", ctx["held_out"]), ("every held-out frame", ctx["held_out_all"])):
        row[f"{name}: boxes/frame"], row[f"{name}: share with a box"] = boxes_per_frame(spec, frames)
    loose = dataclasses.replace(spec, thresholds=LOOSE_THRESHOLDS)  # more of what the model takes for faces
    row["every held-out frame, thresholds 0.1,0.2,0.2: boxes/frame"] = boxes_per_frame(loose, ctx["held_out_all"])[0]
    whole, held_out, boxes = job_on_camera(ctx["footage"], spec, classifier, opt.split_frame, ctx["job_dir"],
                                           opt.threads)
    row["job: alerts, held-out part"], row["job: boxes/frame, held-out part"] = held_out, boxes
    row["job: alerts, whole clip (trained on)"] = whole
    photos = compare([spec], ctx["photo_test"], min_size=20, progress=False)[spec.name]["all"]
    row["facemask853 test: AP@0.5"], row["facemask853 test: recall"] = 100 * photos.ap50, 100 * photos.recall
    row["facemask853 test: false/photo"] = photos.false_per_frame
    found, labeled, other = other_camera(spec, ctx["other_frames"], ctx["other_labels"])
    row[f"{OTHER_CAMERA}: faces found"], row[f"{OTHER_CAMERA}: other boxes/frame"] = f"{found}/{labeled}", other
    return row


# --- the same through the active-learning loop ----------------------------------------------------------
def nearest_labels(footage_labels, index):
    """The hand labels of the labeled frame nearest to frame `index` (labels cover every N-th frame)."""
    return footage_labels.faces[min(footage_labels.frames, key=lambda i: abs(i - index))]


def label_batch(batch_dir, label_of):
    """A labeler's work on a batch: its frames with corrected Suite labels beside them, renamed into
    `labels/` whole (the loop uses a renamed folder at once). label_of(frame path) -> (boxes, classes)."""
    from cctv.labels import write_suite_label
    from cctv.labels.common import image_size

    staging = batch_dir / ".labels.partial"
    staging.mkdir()
    for jpg in sorted((batch_dir / "frames").glob("*.jpg")):
        shutil.copyfile(jpg, staging / jpg.name)
        write_suite_label(staging / (jpg.name + ".json"), *label_of(jpg), *image_size(jpg))
    staging.rename(batch_dir / "labels")


def loop_round(work, footage, photos, split_frame, threads):
    """One round of active_learning.py as cron would run it, in work/active_learning (models_dir there too):
    batch 0001 = labeled face photos, batch 0002 = the frames the main job saved as low-confidence on the
    camera's training part (backs of heads at MTCNN probability 0.7-0.95), labeled as having no face; then
    the round fine-tunes MTCNN and the classifier and promotes or rejects. Returns (version folder, text)."""
    import active_learning
    import cctv_mask_detector

    from cctv.active_learning.loop import tick_text

    root = work / "active_learning"
    shutil.rmtree(root, ignore_errors=True)
    models, uncertain = root / "models", root / "uncertain"
    models.mkdir(parents=True)
    shutil.copyfile(ROOT / "models" / "detector.pt", models / "detector.pt")  # the hand-trained classifier
    cfg = {"workdir": str(root), "models_dir": str(models), "uncertain_frames_dir": str(uncertain),
           "threads": threads, "progress": False, "labels_settle_s": 0}  # labels written whole before the tick
    add_face_photos(photos, uncertain)
    active_learning.run(batch_frames=len(photos), **cfg)
    cctv_mask_detector.run(footage_path=str(footage), output_path=str(root / "job" / "train_part.mp4"),
                           detector_model_path=str(models / "detector.pt"), max_frames=split_frame, record="none",
                           uncertain_frames_dir=str(uncertain), no_voice=True, quiet=True, threads=threads)
    saved = sorted(uncertain.glob("*.jpg"))
    active_learning.run(batch_frames=len(saved), **cfg)
    truth = {Path(p.image_path).name: (p.boxes, p.classes) for p in photos}
    camera = load_footage_labels(LABELS / f"{CAMERA}.json")
    label_batch(root / "batches" / "0001", lambda jpg: truth[jpg.name])
    label_batch(root / "batches" / "0002", lambda jpg: visible_faces(nearest_labels(camera, frame_index(jpg))))
    outcome = active_learning.run(**cfg)
    if not outcome["versions"]:
        raise RuntimeError(f"the loop trained no version: {outcome}")
    text = (f"the job saved {len(saved)} low-confidence frames of the camera's training part; "
            + tick_text(active_learning.build_config(**cfg), outcome).splitlines()[-1])
    return models / "versions" / outcome["versions"][0], text


# --- the run ---------------------------------------------------------------------------------------------
STARTS = {  # name: (starting weights, min_face_size, classifier the main job runs with)
    "pretrained": (None, 20, ROOT / "models" / "detector.pt"),
    "cctv": (ROOT / "models" / "cctv_mtcnn.pt", 10, ROOT / "models" / "cctv_classifier.pt"),
}


def adapt(start, train_dir, out_path, opt):
    """finetune_mtcnn.run on the camera's training frames; (result or None when reused, seconds)."""
    import finetune_mtcnn

    if opt.reuse and out_path.is_file():
        return None, float("nan")
    weights, min_face_size, _ = STARTS[start]
    started = time.perf_counter()
    result = finetune_mtcnn.run(labels_dir=str(train_dir), mtcnn_model_output_path=str(out_path),
                                pretrained_mtcnn_model=str(weights) if weights else None, min_face_size=min_face_size,
                                num_epochs=opt.num_epochs, stages=opt.stages, force=True)
    return result, time.perf_counter() - started


def format_rows(columns):
    """columns: {column name: {figure: value}} -> a table, figures as rows."""
    from cctv.tables import format_table

    def cell(v):
        return (f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}") if isinstance(v, float) else str(v)

    figures = list(next(iter(columns.values())))
    return format_table([""] + list(columns), [[f] + [cell(col[f]) for col in columns.values()] for f in figures],
                        rule=True)


def run(**kwargs):
    from cctv.model_eval import ModelSpec, spec_from_checkpoint
    from cctv.threads import set_threads
    from cctv.images import load_image
    from cctv.labels import load_labels
    from cctv.video import read_frames

    opt = argparse.Namespace(**{**vars(parse_opt([])), **kwargs})
    set_threads(opt.threads)
    work = Path(opt.work_dir)
    footage = SHARED / "data" / "footage" / f"{CAMERA}.mp4"
    train_dir = work / "camera_train"
    if not (opt.reuse and train_dir.is_dir()):
        train_dir, _, counts = build_camera_frames(footage, LABELS / f"{CAMERA}.json", work,
                                                   opt.frames_per_extract, opt.split_frame)
        photo_train, _ = face_photo_split(SHARED)
        counts["face photos"] = add_face_photos(photo_train[:opt.face_photos], train_dir)
        print("labeled frames:", ", ".join(f"{k} {v}" for k, v in counts.items()))
    if opt.control and not (opt.reuse and (work / "photos_only").is_dir()):
        shutil.rmtree(work / "photos_only", ignore_errors=True)
        add_face_photos(face_photo_split(SHARED)[0][:opt.face_photos], work / "photos_only")
    other_labels = load_footage_labels(LABELS / f"{OTHER_CAMERA}.json")
    wanted = set(other_labels.frames)
    ctx = {"footage": footage, "job_dir": work / "job",
           "held_out": [load_image(i.image_path) for i in load_labels(work / "camera_held_out").items],
           "held_out_all": list(read_frames(footage, start=opt.split_frame)),
           "photo_test": face_photo_split(SHARED)[1], "other_labels": other_labels,
           "other_frames": {i: f for i, f in enumerate(read_frames(SHARED / "data" / "footage" / f"{OTHER_CAMERA}.mp4"))
                            if i in wanted}}
    (work / "job").mkdir(parents=True, exist_ok=True)

    columns, notes = {}, []
    for start in [s.strip() for s in opt.starts.split(",") if s.strip()]:
        weights, min_face_size, classifier = STARTS[start]
        before = (ModelSpec(start, None, min_face_size) if weights is None
                  else spec_from_checkpoint(start, weights))
        out_path = work / f"adapted_{start}.pt"
        result, seconds = adapt(start, train_dir, out_path, opt)
        after = spec_from_checkpoint(f"{start} adapted", out_path)
        if result is not None:
            notes.append(f"{start}: fine-tuned in {seconds:.0f} s; finetune_mtcnn.py's own verdict on its held-out "
                         f"training frames: {'better' if result.better else 'not better'} ({result.reason})")
        columns[start] = evaluate(before, classifier, ctx, opt)
        columns[f"{start} adapted"] = evaluate(after, classifier, ctx, opt)
        if opt.control:
            control_path = work / f"photos_only_{start}.pt"
            result, seconds = adapt(start, work / "photos_only", control_path, opt)
            if result is not None:
                notes.append(f"{start} photos only: fine-tuned in {seconds:.0f} s ({result.reason})")
            columns[f"{start} photos only"] = evaluate(spec_from_checkpoint(f"{start} photos only", control_path),
                                                       classifier, ctx, opt)
    if opt.active_learning:
        version, text = loop_round(work, footage, face_photo_split(SHARED)[0][:opt.face_photos], opt.split_frame,
                                   opt.threads)
        notes.append(f"active_learning.py: {text}")
        # the round's MTCNN with the hand-trained classifier: what the loop did to the detector, promoted or not
        name = f"loop {version.name} MTCNN"
        columns[name] = evaluate(spec_from_checkpoint(name, version / "mtcnn.pt"), STARTS["pretrained"][2], ctx, opt)
    print()
    print(format_rows(columns))
    print("\n".join(notes))
    print(f"(held-out: {CAMERA} from frame {opt.split_frame}, {len(ctx['held_out_all'])} frames, "
          f"{len(ctx['held_out'])} of them labeled, no face visible: every box is false; the job ran on the whole "
          f"clip, its held-out part counted from that frame; facemask853: {len(ctx['photo_test'])} test photos, "
          f"faces >= 20 px; {OTHER_CAMERA}: every 5th frame, never trained on)")
    return columns


def main(opt):
    run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
