"""What the main job records (`--record`): the whole annotated video ("all", the job's own VideoWriter), a
short annotated clip around each alert ("alerts": AlertClips), or nothing ("none").

Frames come in as `AnnotatedFrame`s: the frame with what to draw on it, drawn only when a recording (or the
window) needs the picture, so frames that are never recorded (most of a 24/7 camera's, with "alerts") cost
no drawing and no encoding.
"""
from collections import deque
from pathlib import Path

from .video import BackgroundWriter, VideoWriter

RECORD_MODES = ("all", "alerts", "none")
RING_MAX_BYTES = 256 * 2 ** 20  # the clip's lead-in is held in memory; at 1080p 25 fps this is 1.7 s


class AnnotatedFrame:
    """A frame and a function that draws its annotations in place; image() draws once and returns it."""

    __slots__ = ("frame", "draw")

    def __init__(self, frame, draw=None):
        self.frame, self.draw = frame, draw

    def image(self):
        if self.draw is not None:
            self.draw(self.frame)
            self.draw = None
        return self.frame


def default_record_mode(live):
    """Footage files and folders: the whole video; cameras and streams (24/7): clips around alerts."""
    return "alerts" if live else "all"


class AlertClips:
    """An annotated clip from `before_s` before an alert to `after_s` after it, as
    `<output stem>.clips/alertNNNN.mp4` beside the output path; an alert while a clip is open extends it.
    The lead-in is a ring buffer of the last `before_s` seconds of frames (at most RING_MAX_BYTES; a shorter
    lead-in is warned about once). Each clip is written to a temporary file and renamed when complete; numbers
    go on after the clips already in the folder (a restarted camera never overwrites an earlier clip)."""

    def __init__(self, output_path, info, threads, queue_size, before_s, after_s, warn=print):
        output_path = Path(output_path)
        self.folder = output_path.with_name(f"{output_path.stem}.clips")
        self.base = output_path.parent
        self.info, self.threads, self.queue_size, self.warn = info, threads, queue_size, warn
        fps = float(info.fps)
        self.before = round(before_s * fps)
        self.after = round(after_s * fps)
        frame_bytes = info.width * info.height * 3
        fit = RING_MAX_BYTES // frame_bytes
        if self.before > fit:
            warn(f"--clip_before_s: {before_s:g} s of {info.width}x{info.height} frames would hold "
                 f"{self.before * frame_bytes / 2 ** 20:.0f} MiB; clips start {fit / fps:.1f} s before an alert")
            self.before = fit
        self.ring = deque(maxlen=max(self.before, 1))
        self.writer, self.end, self.index, self.clips = None, 0, 0, 0
        self.path = None
        taken = [p.stem[len("alert"):] for p in self.folder.glob("alert*.mp4")]
        self.number = max([int(n) for n in taken if n.isdigit()], default=0)

    def alert(self, time_s):
        """Open a clip (with the lead-in) or extend the open one to `after_s` past this alert; its path."""
        if self.writer is None:
            self.clips, self.number = self.clips + 1, self.number + 1
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / f"alert{self.number:04d}.mp4"
            self.writer = BackgroundWriter(VideoWriter(self.path, self.info.width, self.info.height,
                                                       self.info.fps, threads=self.threads, warn=self.warn),
                                           maxsize=self.queue_size)
            lead_in = list(self.ring)[-self.before:] if self.before else []
            for item in lead_in:
                self.writer.write(item.image())
            self.ring.clear()
        self.end = self.index + self.after  # the alert's frame is the next one added
        return self.path.relative_to(self.base).as_posix()

    def add(self, item):
        if self.writer is None:
            self.ring.append(item)
        else:
            self.writer.write(item.image())
            if self.index >= self.end:
                self._finish()
        self.index += 1

    def _finish(self):
        writer, self.writer = self.writer, None
        writer.close()

    def close(self):
        if self.writer is not None:
            self._finish()
        self.ring.clear()
