"""Runs laid out on disk as the main job writes them (manifest, timeline, events, snapshots), for the report
tests: a camera's day where masks go on as the minutes pass, with real footage frames as snapshots."""
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

START = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


def footage_frame(shared_dir, index=4):
    """Frame `index` of four_people_masking.mp4 (RGB), or a plain grey frame without ../shared."""
    path = shared_dir / "data" / "footage" / "four_people_masking.mp4" if shared_dir else None
    if path is not None and path.is_file():
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        cap.release()
        if ok:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return np.full((506, 960, 3), 128, np.uint8)


def write_run(folder, name="camera0.mp4", camera="camera0", start=START, seconds=600, fps=10.0, live=True,
              alerts=(), snapshot_image=None, with_manifest=True, people=True):
    """A run of `seconds` seconds whose protected share rises from 20% to 100%; `alerts`: times (s) of
    alerts, each with a frame snapshot and a face snapshot (written when `snapshot_image` is given)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / name
    timeline = []
    for t in range(seconds):
        share = min(1.0, 0.2 + 0.8 * t / max(1, seconds * 0.7))
        faces = 4.0
        timeline.append({"time_s": float(t), "frame": int(t * fps), "frames": int(fps), "faces": faces,
                         "protected": round(faces * share, 2), "ratio": round(share, 4),
                         "people_in_view": 4 if people else None,
                         "people_seen": (4 + t // 60) if people else None,
                         "wall_time": (start + timedelta(seconds=t)).isoformat(timespec="seconds")})
    (folder / f"{name}.timeline.jsonl").write_text("".join(json.dumps(x) + "\n" for x in timeline))
    events = []
    for i, t in enumerate(alerts, 1):
        frame = int(t * fps)
        shots = [f"{name}.snapshots/alert{i:04d}-frame{frame:05d}.jpg",
                 f"{name}.snapshots/alert{i:04d}-track{i}-face.jpg"]
        events.append({"time_s": float(t), "frame": frame, "faces": 4, "protected": 1, "ratio": 0.25,
                       "rule": "person", "people": 4, "people_protected": 1, "track_ids": [i], "snapshots": shots})
        if snapshot_image is not None:
            (folder / f"{name}.snapshots").mkdir(exist_ok=True)
            bgr = cv2.cvtColor(snapshot_image, cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(folder / shots[0]), bgr)
            cv2.imwrite(str(folder / shots[1]), bgr[100:300, 200:400])
    (folder / f"{name}.events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if with_manifest:
        (folder / f"{name}.run.json").write_text(json.dumps({
            "source": "rtsp://entrance.local/stream" if live else name, "camera": camera, "live": live,
            "state": "finished", "started": start.isoformat(timespec="seconds"), "fps": fps,
            "frames": int(seconds * fps), "faces": 4 * int(seconds * fps), "alerts": len(events),
            "models": {"detector": {"path": "models/versions/v0002/detector.pt", "version": "v0002"},
                       "mtcnn": {"path": "models/versions/v0002/mtcnn.pt", "version": "v0002"}},
            "settings": {"alert_threshold": 0.75, "blur_faces": "all"}}))
    return base
