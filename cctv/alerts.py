"""Alerts: when too few of the people (or faces) in view wear a mask, log an event and speak a reminder.

- PersonAlertMonitor decides over tracked people and their decided states (the default rule);
  AlertMonitor over each frame's raw faces (the write-up's rule, `--alert_rule frame`). Pure logic, video time.
- EventLog writes one JSON line per alert to `<output_path>.events.jsonl`.
- VoiceAlert speaks from a background thread (pyttsx3 + espeak-ng) and never blocks frame processing.
- render_speech() renders the message to samples, for mixing into the output video's audio track.
"""
import contextlib
import errno
import io
import json
import os
import platform
import queue
import shutil
import tempfile
import threading
import wave
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import write_text
from .errors import UserError

DEFAULT_MESSAGE = "Don't forget to wear your mask before leaving the office!"
EVENT_FIELDS = ("time_s", "frame", "faces", "protected", "ratio", "rule", "people", "people_protected",
                "track_ids", "snapshots")


@dataclass(frozen=True)
class AlertEvent:
    """One alert. `faces`/`protected`: the frame's faces; `ratio`: the rule's ratio (people or faces);
    `people`/`people_protected`: the people in view with a decided state; `track_ids`: whom it is about;
    `snapshots`: files beside the events file (paths relative to its folder)."""
    time_s: float
    frame: int
    faces: int
    protected: int
    ratio: float
    rule: str = "frame"
    people: int = 0
    people_protected: int = 0
    track_ids: tuple = ()
    snapshots: tuple = ()
    clip: str | None = None  # --record alerts: the clip's path, relative to the events file's folder

    def with_snapshots(self, paths):
        return replace(self, snapshots=tuple(str(p) for p in paths))

    def to_json(self) -> str:
        line = {"time_s": round(self.time_s, 3), "frame": self.frame, "faces": self.faces,
                "protected": self.protected, "ratio": round(self.ratio, 4), "rule": self.rule,
                "people": self.people, "people_protected": self.people_protected,
                "track_ids": [int(t) for t in self.track_ids], "snapshots": list(self.snapshots)}
        if self.clip:
            line["clip"] = self.clip
        return json.dumps(line)


class AlertMonitor:
    """An alert when at least `min_faces` faces are in view and protected/total < `threshold` for
    `frames` consecutive frames; after an alert, quiet for `cooldown_s` seconds of video time. A frame that
    doesn't meet the condition (too few faces, or enough masks) ends the streak."""

    def __init__(self, threshold=0.75, min_faces=1, frames=5, cooldown_s=10.0):
        if frames < 1 or min_faces < 1:
            raise ValueError("alert frames and min faces must be >= 1")
        self.threshold, self.min_faces, self.frames, self.cooldown_s = threshold, min_faces, frames, cooldown_s
        self.streak = 0
        self.quiet_until = float("-inf")
        self.count = 0

    def update(self, frame, time_s, faces, protected, people=None, unprotected_ids=()):
        """Feed one frame's counts; returns an AlertEvent when an alert fires, else None. `people` (the job's
        People) and the frame's unprotected faces' track ids only fill in the event."""
        ratio = protected / faces if faces else 1.0
        if faces >= self.min_faces and ratio < self.threshold:
            self.streak += 1
        else:
            self.streak = 0
        if self.streak >= self.frames and time_s >= self.quiet_until:
            self.quiet_until = time_s + self.cooldown_s
            self.count += 1
            counts = people.counts() if people is not None else {"protected": 0, "unprotected": 0}
            return AlertEvent(float(time_s), int(frame), int(faces), int(protected), float(ratio), "frame",
                              counts["protected"] + counts["unprotected"], counts["protected"],
                              tuple(int(t) for t in unprotected_ids if t >= 0))
        return None


class PersonAlertMonitor:
    """The write-up's rule over people: an alert when at least `min_people` people in view have a decided
    state and fewer than `threshold` of them are protected. It names the unprotected people it is about,
    each once while they stay in view (and, with an exit zone, only those heading out)."""

    def __init__(self, threshold=0.75, min_people=1):
        if min_people < 1:
            raise ValueError("min people must be >= 1")
        self.threshold, self.min_people = threshold, min_people
        self.count = 0

    def holds(self, protected, decided):
        """The rule's condition: enough people with a decided state, too few of them protected."""
        return decided >= self.min_people and protected / decided < self.threshold

    def update(self, frame, time_s, faces, protected, people):
        from .people import PROTECTED, UNPROTECTED

        decided = [p for p in people.in_view() if p.state in (PROTECTED, UNPROTECTED)]
        n_protected = sum(p.state == PROTECTED for p in decided)
        if not self.holds(n_protected, len(decided)):
            return None
        ratio = n_protected / len(decided)
        named = [p for p in decided if p.state == UNPROTECTED and not p.alerted
                 and (people.zone is None or p.heading_out)]
        if not named:
            return None
        for person in named:
            person.alerted = True
        self.count += 1
        return AlertEvent(float(time_s), int(frame), int(faces), int(protected), float(ratio), "person",
                          len(decided), n_protected, tuple(p.track_id for p in named))


class EventLog:
    """`<output>.events.jsonl`: one line per alert and nothing else; empty when no alert fired.

    It is a live log (a camera can run for weeks, and whoever watches alerts tails it): the file is first
    put in place empty (atomically, replacing a previous run's), then each alert is appended with a single
    write of one whole line, so a reader never sees half a line."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            write_text(self.path, "")
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise UserError(f"{self.path}: cannot write the events file ({e.strerror or e})") from None

    def write(self, event: AlertEvent):
        """Append one line; on a failed or short write (disk full) the line is taken back and UserError raised."""
        line = (event.to_json() + "\n").encode("utf-8")
        end = os.fstat(self.fd).st_size
        try:
            if os.write(self.fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write (disk full?)")
        except OSError as e:
            try:
                os.ftruncate(self.fd, end)  # never a torn line for the readers
            except OSError:
                pass
            raise UserError(f"{self.path}: writing an alert failed ({e.strerror or e})") from None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_events(path):
    """The alert events of an events file, as dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# pyttsx3 keeps its engine only while someone holds it, and its espeak driver can still be called back for
# an engine already collected ("Exception ignored on calling ctypes callback function", then a segfault:
# seen once in 24 demo runs, at start-up, where the voice thread made a second engine). So the process
# keeps its one engine: every caller gets the same.
_kept_engine = None


def speech_engine(warn):
    """The process's pyttsx3 engine, or None after one warning when there is no speech engine. Callers use it
    one after another (rendering at start-up, then the voice thread), never at once."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pyttsx3

            engine = pyttsx3.init()  # the live engine, if there is one
    except Exception as e:  # pyttsx3 raises many kinds (ImportError, RuntimeError, OSError) when absent
        warn(f"voice alerts off: no speech engine ({e.__class__.__name__}: {e}); install espeak-ng")
        return None
    global _kept_engine
    _kept_engine = engine  # pyttsx3.init() gives the live engine while one is kept: this is always the same
    return engine


def render_speech(message, warn):
    """The message spoken by pyttsx3 + espeak-ng as (float32 mono samples, sample rate), or None after a
    warning when no speech engine is available."""
    engine = speech_engine(warn)
    if engine is None:
        return None
    fd, tmp = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints "Audio saved to ..."
            engine.save_to_file(message, tmp)
            engine.runAndWait()
        return read_wav(tmp)
    except Exception as e:
        warn(f"alert audio off: speech rendering failed ({e.__class__.__name__}: {e})")
        return None
    finally:
        os.unlink(tmp)


def read_wav(path):
    """A PCM WAV file as (float32 mono samples in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


class VoiceAlert:
    """Speaks the message in a background thread. say() never blocks: while the voice is busy, further
    requests are dropped. Without a speech engine or audio output it warns once and stays silent."""

    def __init__(self, message, warn):
        self.message, self.warn = message, warn
        self.requests = queue.Queue(maxsize=1)
        self.spoken = 0
        self.thread = threading.Thread(target=self._speak_loop, name="voice-alert", daemon=True)
        self.thread.start()

    def say(self):
        try:
            self.requests.put_nowait(self.message)
        except queue.Full:
            pass

    def close(self, timeout=5.0):
        """Let a message being spoken finish (up to `timeout` s), then stop the thread."""
        try:
            self.requests.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)

    def _speak_loop(self):
        engine = speech_engine(self.warn)
        if engine is not None and not _has_audio_player():
            self.warn("voice alerts off: no audio output (pyttsx3's espeak driver plays through `aplay`, "
                      "from alsa-utils, to a sound card); alerts still go to the events file")
            engine = None
        while True:
            message = self.requests.get()
            if message is None:
                return
            if engine is None:
                continue
            try:
                engine.say(message)
                engine.runAndWait()
                self.spoken += 1
            except Exception as e:  # a broken audio device must not stop the job
                self.warn(f"voice alert failed ({e.__class__.__name__}: {e}); voice alerts off")
                engine = None


def _has_audio_player():
    """On Linux: aplay is there and ALSA lists a sound card (a server or container often has none)."""
    if platform.system() != "Linux":
        return True
    if shutil.which("aplay") is None:
        return False
    try:
        cards = Path("/proc/asound/cards").read_text()
    except OSError:
        return False
    return bool(cards.strip()) and "no soundcards" not in cards
