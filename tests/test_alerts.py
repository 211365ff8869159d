"""Alert logic, the events file, the voice that never blocks, and the uncertain-frames folder."""
import json
import os
import threading
import time

import numpy as np
import pytest

from cctv import alerts
from cctv.alerts import EVENT_FIELDS, AlertMonitor, EventLog, VoiceAlert, read_events, render_speech
from cctv.uncertain import UncertainFrameSaver, is_uncertain


def feed(monitor, counts, fps=10.0):
    """Run (faces, protected) per frame through the monitor; the frames that raised an alert."""
    return [i for i, (faces, protected) in enumerate(counts) if monitor.update(i, i / fps, faces, protected)]


def test_alert_needs_consecutive_frames_under_the_threshold():
    m = AlertMonitor(threshold=0.75, min_faces=1, frames=3, cooldown_s=100)
    # 2 bad frames, a good one (3/4 = 0.75 is not under 0.75), then 3 bad ones: the alert comes on the 3rd
    counts = [(2, 1), (2, 1), (4, 3), (4, 2), (4, 2), (4, 2), (4, 2)]
    assert feed(m, counts) == [5]


def test_frames_with_too_few_faces_are_not_judged_and_break_the_streak():
    m = AlertMonitor(threshold=0.75, min_faces=2, frames=2, cooldown_s=100)
    assert feed(m, [(1, 0), (1, 0), (1, 0), (0, 0), (2, 0), (1, 0), (2, 1), (2, 1)]) == [7]


def test_cooldown_keeps_quiet_then_alerts_again():
    m = AlertMonitor(threshold=0.75, min_faces=1, frames=2, cooldown_s=1.0)
    # 10 fps, unmasked throughout: alert at frame 1, quiet for 1 s, again at frame 11, 21, ...
    assert feed(m, [(1, 0)] * 25) == [1, 11, 21]
    assert m.count == 3


def test_events_file_has_exactly_the_documented_fields(tmp_path):
    path = tmp_path / "out.mp4.events.jsonl"
    m = AlertMonitor(frames=1, cooldown_s=0)
    path.write_text('{"from": "a previous run"}\n')
    with EventLog(path) as log:
        assert path.read_text() == ""  # a fresh, empty log replaces the previous run's
        log.write(m.update(12, 0.48, 3, 1))
        assert len(read_events(path)) == 1  # visible at once to whoever tails it (a live camera)
        log.write(m.update(13, 0.52, 2, 0))
    events = read_events(path)
    assert [tuple(e) for e in events] == [EVENT_FIELDS] * 2
    assert events[0] == {"time_s": 0.48, "frame": 12, "faces": 3, "protected": 1, "ratio": 0.3333, "rule": "frame",
                         "people": 0, "people_protected": 0, "track_ids": [], "snapshots": []}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


class SlowEngine:
    """A speech engine that takes 0.5 s per message (like a real voice)."""

    def __init__(self):
        self.said = []

    def say(self, text):
        self.said.append(text)

    def runAndWait(self):
        time.sleep(0.5)


def test_voice_never_blocks_frame_processing(monkeypatch):
    engine = SlowEngine()
    monkeypatch.setattr(alerts, "speech_engine", lambda warn: engine)
    monkeypatch.setattr(alerts, "_has_audio_player", lambda: True)
    voice = VoiceAlert("wear your mask", warn=lambda m: None)
    started = time.perf_counter()
    for _ in range(50):  # alerts arriving much faster than the voice can speak
        voice.say()
    assert time.perf_counter() - started < 0.05
    voice.close(timeout=3)
    assert 1 <= len(engine.said) <= 2 and engine.said[0] == "wear your mask"  # busy -> dropped, not queued


def test_without_a_speech_engine_it_warns_once_and_goes_on(monkeypatch):
    def no_engine():
        raise OSError("libespeak.so.1: cannot open shared object file")

    import pyttsx3

    monkeypatch.setattr(pyttsx3, "init", no_engine)
    warnings = []
    voice = VoiceAlert("wear your mask", warn=warnings.append)
    for _ in range(5):
        voice.say()
        time.sleep(0.01)
    voice.close(timeout=2)
    assert len(warnings) == 1 and "no speech engine" in warnings[0]
    assert render_speech("hello", warnings.append) is None and len(warnings) == 2


def test_speech_renders_to_samples_when_espeak_is_installed():
    import shutil

    if not shutil.which("espeak-ng") and not shutil.which("espeak"):
        pytest.skip("espeak-ng not installed (scripts/setup_env.sh installs it where it can)")
    samples, rate = render_speech("Don't forget to wear your mask", warn=pytest.fail)
    assert 8000 <= rate <= 48000 and 0.8 < len(samples) / rate < 5
    assert np.abs(samples).max() > 0.1


def test_the_speech_engine_outlives_its_callers():
    """espeak calls back into the engine after runAndWait returns: a collected engine crashed the job."""
    import gc
    import shutil
    import weakref

    if not shutil.which("espeak-ng") and not shutil.which("espeak"):
        pytest.skip("espeak-ng not installed (scripts/setup_env.sh installs it where it can)")
    assert render_speech("hello", warn=pytest.fail) is not None
    engine = weakref.ref(alerts.speech_engine(pytest.fail))
    gc.collect()
    assert engine() is not None and alerts.speech_engine(pytest.fail) is engine()  # one engine, kept


def test_uncertain_when_detection_prob_in_band_or_class_near_half():
    assert not is_uncertain([0.99], [0.97], band=(0.7, 0.95), margin=0.15)
    assert is_uncertain([0.8], [0.97], band=(0.7, 0.95), margin=0.15)
    assert is_uncertain([0.99, 0.99], [0.02, 0.6], band=(0.7, 0.95), margin=0.15)
    assert not is_uncertain([0.99], [0.3], band=(0.7, 0.95), margin=0.15)


def test_uncertain_frames_are_rate_limited_and_carry_suite_labels(tmp_path):
    from cctv.labels import load_labels

    saver = UncertainFrameSaver(tmp_path, "cam", max_per_second=2.0)
    frame = np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 50, 60], [80, 20, 120, 70]], np.float32)
    for i in range(25):  # 1 s at 25 fps, every frame uncertain
        saver.consider(frame, i, i / 25, boxes, np.array([0.99, 0.8]), np.array([0.9, 0.45]))
    jpegs = sorted(tmp_path.glob("*.jpg"))
    assert [p.name for p in jpegs] == ["cam-frame0.jpg", "cam-frame13.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in jpegs] +
                                                                 [p.name + ".json" for p in jpegs])
    labels = load_labels(tmp_path)
    items = sorted(labels.items, key=lambda it: str(it.image_path))
    assert len(items) == 2
    assert np.allclose(items[0].boxes, boxes) and list(items[0].classes) == ["protected", "unprotected"]


def test_sidecar_is_in_place_before_its_jpeg_appears(tmp_path, monkeypatch):
    renamed = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renamed.append((os.path.basename(src), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    saver = UncertainFrameSaver(tmp_path, "cam")
    saver.save(np.zeros((40, 40, 3), np.uint8), 7, np.array([[1, 1, 20, 20]]), np.array([0.5]))
    assert [dst for _, dst in renamed] == ["cam-frame7.jpg.json", "cam-frame7.jpg"]
    assert all(src.startswith(".") for src, _ in renamed)  # temporary names are hidden from readers
    assert not any(src.endswith((".jpg", ".json")) for src, _ in renamed[1:])  # nor globbed as *.jpg


def test_a_reader_polling_the_folder_never_sees_a_jpeg_without_its_sidecar(tmp_path):
    saver = UncertainFrameSaver(tmp_path, "cam", max_per_second=1000)
    frame = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    stop, orphans = threading.Event(), []

    def cron_like_reader():
        while not stop.is_set():
            for jpeg in tmp_path.glob("*.jpg"):
                if not jpeg.with_name(jpeg.name + ".json").exists():
                    orphans.append(jpeg.name)

    reader = threading.Thread(target=cron_like_reader)
    reader.start()
    for i in range(60):
        saver.consider(frame, i, i / 25, np.array([[5, 5, 60, 60]]), np.array([0.8]), np.array([0.5]))
    stop.set()
    reader.join()
    assert saver.saved == 60 and orphans == []
    json.loads((tmp_path / "cam-frame59.jpg.json").read_text())
