"""People, tracks and alerts of the main job on the write-up's footage, against hand labels, and what tracking
and voting cost.

Per clip (the main job end to end, person rule): frames, face detections, face track ids, body track ids,
people counted against the people who come in, their decided states, id switches and fragmentation against
the labelled face centres of benchmarks/data/footage_faces/<clip>.json (a label goes to the nearest tracked
face, else to the body whose upper part holds it; a body's person id is that of its face track once one
counts, so a body that gets its face is one id switch, as the video shows it), the share of labels a track
covers, how often a person's decided state agrees with the label, the alerts (time, track ids and the
labelled people they are about), and the share of the job's frame time spent in face tracking, body
tracking and voting (timed in the same run).
Then an A/B: the job on the first frames of four_people_masking.mp4 with and without tracking and voting,
alternating over rounds (best of each).

    .venv/bin/python benchmarks/bench_tracking.py --threads 2
"""
import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
LABELS = ROOT / "benchmarks" / "data" / "footage_faces"
sys.path.insert(0, str(ROOT))

import cctv_mask_detector  # noqa: E402
from cctv import bodies as bodies_module  # noqa: E402
from cctv import people as people_module  # noqa: E402
from cctv.tables import format_table  # noqa: E402
from cctv import tracking  # noqa: E402
from cctv.alerts import read_events  # noqa: E402

WRITEUP_THRESHOLDS = [0.1, 0.2, 0.2]  # the write-up's MTCNN thresholds for its CCTV footage
# The channy camera's door: its frame's right edge is at x = 200 of 480; leaving = crossing it leftwards.
CHANNY_EXIT = {"thresholds": WRITEUP_THRESHOLDS, "exit_zone": "200,0,200,270"}
CCTV_PAIR = {"detector_model_path": str(ROOT / "models" / "cctv_classifier.pt")}  # + its paired MTCNN
# (clip, setting name, job flags)
SETTINGS = [
    ("channy_in.gif", "default", {}),
    ("channy_in.gif", "write-up thresholds", {"thresholds": WRITEUP_THRESHOLDS}),
    ("channy_in.gif", "write-up thr. + exit line", CHANNY_EXIT),
    ("channy_out.gif", "default", {}),
    ("channy_out.gif", "write-up thresholds", {"thresholds": WRITEUP_THRESHOLDS}),
    ("channy_out.gif", "write-up thr. + exit line", CHANNY_EXIT),
    ("channy_out.gif", "CCTV pair", CCTV_PAIR),
    ("four_people_masking.mp4", "default", {}),
    ("one_by_one_people.mp4", "default", {}),
]


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", default=None, help="comma-separated clip names (default: all of the table)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--detector_model_path", default=str(ROOT / "models" / "detector.pt"))
    p.add_argument("--ab_frames", type=int, default=100, help="frames of four_people_masking.mp4 in the A/B")
    p.add_argument("--rounds", type=int, default=3, help="A/B rounds (tracking on, then off, each round)")
    p.add_argument("--skip_ab", action="store_true")
    return p.parse_args()


class Timer:
    """Wraps a method with a stopwatch (seconds summed over calls; a timed call inside another timed call,
    e.g. the body tracker's ByteTrack, is counted once, in the outer one)."""
    depth = 0

    def __init__(self, owner, name):
        self.owner, self.name, self.original, self.seconds = owner, name, getattr(owner, name), 0.0
        timer = self

        def timed(*args, **kwargs):
            started = time.perf_counter()
            Timer.depth += 1
            try:
                return timer.original(*args, **kwargs)
            finally:
                Timer.depth -= 1
                if not Timer.depth:
                    timer.seconds += time.perf_counter() - started

        setattr(owner, name, timed)

    def restore(self):
        setattr(self.owner, self.name, self.original)


def run_clip(clip, flags, opt, out_dir):
    """The job on a clip; per frame: [(track id, centre x, centre y, size)], the bodies seen that are people
    (as the video draws them) [(person id, x1, y1, x2, y2)], the person states, detections. A body's person id
    is that of the face track that stands for it (Body.face_id: one person, one id), else "b<body id>"."""
    frames, bodies, states, body_tracks = [], [], [], set()
    detections = 0

    def on_frame(job, faces):
        nonlocal detections
        detections += faces.total
        boxes = faces.boxes.reshape(-1, 4)
        frames.append([(int(t), float((b[0] + b[2]) / 2), float((b[1] + b[3]) / 2), float(b[2] - b[0]))
                       for t, b in zip(faces.track_ids, boxes)])
        people = job.people
        body_tracks.update(b.track_id for b in people.bodies.values() if b.last_s == people.now)
        bodies.append([(body_person(b), *map(float, b.box)) for b in people.bodies_in_view()])  # as drawn
        states.append({**{t: (p.state, p.is_person) for t, p in people.tracks.items()},
                       **{body_person(b): ("unknown", b.walked) for b in people.bodies.values() if not b.has_face}})

    timers = [Timer(tracking.FaceTracker, "update"), Timer(people_module.People, "update"),
              Timer(bodies_module.BodyTracker, "update")]
    out = out_dir / f"{Path(clip).stem}.mp4"
    try:
        started = time.perf_counter()
        args = {"detector_model_path": opt.detector_model_path, **flags}  # a setting may bring its own models
        summary = cctv_mask_detector.run(footage_path=str(SHARED / "data" / "footage" / clip), output_path=str(out),
                                         threads=opt.threads, no_voice=True, quiet=True, on_frame=on_frame, **args)
        seconds = time.perf_counter() - started
    finally:
        for t in timers:
            t.restore()
    return {"summary": summary, "frames": frames, "bodies": bodies, "body_tracks": len(body_tracks), "states": states,
            "detections": detections,
            "events": read_events(f"{out}.events.jsonl"), "share": sum(t.seconds for t in timers) / seconds,
            "out": out}


def body_person(body):
    return body.face_id if body.has_face else f"b{body.track_id}"


def match(labels, tracked, bodies=()):
    """Labelled faces to tracked faces, nearest centres within a gate, then the labels left to the bodies whose
    upper part (grown by the labels' roughness, 40 px) holds them: {label id: track or person id}."""
    tracked = [t for t in tracked if t[0] >= 0]
    matched = {}
    if labels and tracked:
        cost = np.array([[np.hypot(lab["x"] - x, lab["y"] - y) for _, x, y, _ in tracked] for lab in labels])
        gate = np.array([[max(0.75 * lab["size"], 0.75 * s, 12.0) for _, _, _, s in tracked] for lab in labels])
        rows, cols = linear_sum_assignment(np.where(cost <= gate, cost, 1e6))
        matched = {labels[r]["id"]: tracked[c][0] for r, c in zip(rows, cols) if cost[r, c] <= gate[r, c]}
    taken = set(matched.values())
    for lab in labels:
        if lab["id"] in matched:
            continue
        holders = [(abs(lab["x"] - (x1 + x2) / 2), pid) for pid, x1, y1, x2, y2 in bodies if pid not in taken
                   and x1 - 40 <= lab["x"] <= x2 + 40 and y1 - 40 <= lab["y"] <= y1 + 0.4 * (y2 - y1) + 40]
        if holders:
            matched[lab["id"]] = min(holders)[1]
            taken.add(matched[lab["id"]])
    return matched


def track_metrics(truth, run):
    """id switches (a label's track changes between its labelled frames), fragmentation (its track is lost and
    picked up again), the share of labelled faces with a track, and state agreement with the labels."""
    static = set(truth.get("static_ids", []))
    history = defaultdict(list)  # label id -> track id or None, per labelled frame
    agree = judged = unknown = 0
    owner = defaultdict(Counter)  # track id -> label ids it was matched to
    for index, labels in sorted(truth["frames"].items(), key=lambda kv: int(kv[0])):
        index = int(index)
        if index >= len(run["frames"]):
            continue
        matched = match(labels, run["frames"][index], run["bodies"][index])
        for lab in labels:
            track = matched.get(lab["id"])
            history[lab["id"]].append(track)
            if track is not None:
                owner[track][lab["id"]] += 1
            if track is None or lab["mask"] is None or lab["id"] in static:
                continue
            state, is_person = run["states"][index].get(track, ("unknown", False))
            judged += 1
            if state == "unknown" or not is_person:
                unknown += 1
            elif (state == "protected") == bool(lab["mask"]):
                agree += 1
    switches = frags = 0
    for seq in history.values():
        seen = [t for t in seq if t is not None]
        switches += sum(a != b for a, b in zip(seen, seen[1:]))
        on = [t is not None for t in seq]
        first, last = (on.index(True), len(on) - 1 - on[::-1].index(True)) if any(on) else (0, -1)
        frags += sum(1 for a, b in zip(on[first:last], on[first + 1:last + 1]) if a and not b)
    points = sum(len(seq) for seq in history.values())
    covered = sum(t is not None for seq in history.values() for t in seq)
    people = {lid for lid in history if lid not in static}
    return {"switches": switches, "frags": frags, "covered": covered / points if points else float("nan"),
            "agree": agree / judged if judged else float("nan"), "unknown": unknown / judged if judged else float("nan"),
            "owner": {t: c.most_common(1)[0][0] for t, c in owner.items()},
            "truth_people": truth.get("people", len(people))}


def load_truth(clip):
    path = LABELS / f"{Path(clip).stem}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def row_of(clip, setting, run, truth):
    s = run["summary"]
    tracks = {t for frame in run["frames"] for t, *_ in frame if t >= 0}
    m = track_metrics(truth, run) if truth else None
    fmt = (lambda v: "n/a" if v is None or v != v else f"{100 * v:.0f}%")  # noqa: E731
    alerts = "; ".join(f"{e['time_s']:.2f}s #{','.join(map(str, e['track_ids']))}"
                       + (f" (label {','.join(str(m['owner'].get(t, '?')) for t in e['track_ids'])})" if m else "")
                       for e in run["events"]) or "none"
    people = s.people
    return {"clip": clip, "setting": setting, "frames": s.frames, "detections": run["detections"],
            "tracks": len(tracks), "bodies": run["body_tracks"],
            "people": f"{sum(people.values())} / {m['truth_people'] if m else '?'}",
            "prot/unprot/unknown": f"{people['protected']}/{people['unprotected']}/{people['unknown']}",
            "id switches": m["switches"] if m else "n/a", "frag": m["frags"] if m else "n/a",
            "tracked": fmt(m["covered"]) if m else "n/a", "state agrees": fmt(m["agree"]) if m else "n/a",
            "alerts": len(run["events"]), "track+vote": f"{100 * run['share']:.2f}%", "_alerts": alerts}


def print_table(rows):
    head = [k for k in rows[0] if not k.startswith("_")]
    print(format_table(head, [[r[h] for h in head] for r in rows], align="l" * len(head)))
    print("\nalerts (time, track ids, and the labelled people they matched):")
    for r in rows:
        print(f"  {r['clip']} [{r['setting']}]: {r['_alerts']}")


def ab(opt, out_dir):
    """End-to-end frames/s with and without tracking and voting (frame rule, same frames), alternating."""
    clip = str(SHARED / "data" / "footage" / "four_people_masking.mp4")
    best = {"with": float("inf"), "without": float("inf")}
    for _ in range(opt.rounds):
        for mode in ("with", "without"):
            patches = []
            if mode == "without":
                patches = [_Disabled(tracking.FaceTracker, "update", lambda self, boxes, probs: np.full(len(boxes), -1)),
                           _Disabled(people_module.People, "update", lambda self, *a, **k: None),
                           _Disabled(bodies_module.BodyTracker, "update",
                                     lambda self, frame: (np.zeros((0, 4), np.float32), np.zeros(0, int)))]
            try:
                started = time.perf_counter()
                cctv_mask_detector.run(footage_path=clip, output_path=str(out_dir / f"ab_{mode}.mp4"),
                                       detector_model_path=opt.detector_model_path, threads=opt.threads,
                                       no_voice=True, quiet=True, max_frames=opt.ab_frames, alert_rule="frame")
                best[mode] = min(best[mode], (time.perf_counter() - started) / opt.ab_frames)
            finally:
                for p in patches:
                    p.restore()
    added = best["with"] / best["without"] - 1
    print(f"\nA/B, {opt.ab_frames} frames of four_people_masking.mp4 (960x506), {opt.threads} threads, "
          f"best of {opt.rounds} alternating rounds:")
    print(f"  with tracking and voting     {1000 * best['with']:.1f} ms/frame")
    print(f"  without                      {1000 * best['without']:.1f} ms/frame")
    print(f"  added                        {100 * added:+.1f}%  (target: under 5%)")


class _Disabled:
    def __init__(self, owner, name, replacement):
        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        setattr(owner, name, replacement)

    def restore(self):
        setattr(self.owner, self.name, self.original)


def main(opt):
    if not (SHARED / "data" / "footage").is_dir():
        sys.exit(f"error: {SHARED / 'data' / 'footage'}: the footage is not there (../shared beside the repo)")
    wanted = set(opt.clips.split(",")) if opt.clips else None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip, setting, flags in SETTINGS:
            if wanted and clip not in wanted:
                continue
            print(f"{clip} [{setting}] ...", file=sys.stderr, flush=True)
            run = run_clip(clip, flags, opt, Path(tmp) / setting.replace(" ", "_"))
            rows.append(row_of(clip, setting, run, load_truth(clip)))
        print(f"\nThe main job (person rule) on {opt.threads} CPU threads; labels: {LABELS.relative_to(ROOT)}")
        print_table(rows)
        if not opt.skip_ab:
            ab(opt, Path(tmp))


if __name__ == "__main__":
    main(parse_opt())
