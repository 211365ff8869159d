"""Video in and out: footage files, folders of footage, cameras and streams in; H.264 .mp4 out.

Frames stream through as HxWx3 uint8 RGB arrays, read ahead by a thread into a bounded queue, so memory
stays flat however long the footage. Live sources (a camera index, an RTSP/HTTP stream) reconnect with
backoff when they drop, then fail with a UserError.
"""
import os
import queue
import struct
import threading
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock, the rest works
    fcntl = None

import av
import cv2
import numpy as np

from .atomic import check_writable, check_writable_dir  # noqa: F401 - the job imports them from here
from .errors import UserError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"}
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://")
URL_SCHEMES = LIVE_SCHEMES + ("http://", "https://")
DEFAULT_FPS = Fraction(25)


@dataclass
class SourceInfo:
    name: str              # what the user gave (path, URL, "camera 0")
    stem: str              # short name for output files
    width: int
    height: int
    fps: Fraction
    frames: int | None     # None when unknown (live sources, some containers)
    live: bool


# ---------------------------------------------------------------- sources

def warn_stderr(message):
    print(f"warning: {message}", file=sys.stderr)


def open_source(spec, reconnect_attempts=5, reconnect_delay=1.0, warn=warn_stderr):
    """A source for `spec`: a video file, a folder of them, a camera index ("0") or a stream URL.
    Iterating it yields HxWx3 uint8 RGB frames; `.info` describes it; `.close()` releases it."""
    spec = str(spec)
    live = dict(reconnect_attempts=reconnect_attempts, reconnect_delay=reconnect_delay, warn=warn)
    if spec.isdigit():
        return LiveSource(spec, CameraReader, **live)
    if spec.lower().startswith(URL_SCHEMES):
        opener = partial(open_stream, warn=warn)
        if spec.lower().startswith(LIVE_SCHEMES):
            return LiveSource(spec, opener, **live)
        reader = opener(spec)  # an HTTP URL may be a finite file or a live stream
        if reader.info.live:
            return LiveSource(spec, opener, first_reader=reader, **live)
        return reader
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, warn)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{path}: not a video file (expected one of {', '.join(sorted(VIDEO_SUFFIXES))})")
    return FileSource(path, warn=warn)


BT601_COLORSPACES = {2, 5, 6}  # FFmpeg's unspecified (taken as BT.601), BT470BG, SMPTE170M
FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG


def rgb_array(frame, width=None, height=None):
    """A decoded av.VideoFrame as an RGB uint8 array of width x height (default: its own size; a stream may
    change size midway). Limited-range BT.601 4:2:0 video of that size, most H.264 footage, is converted by
    OpenCV: 0.1 ms at 768x432 where PyAV's swscale takes 1 ms, as long as decoding the frame itself (the same
    picture, about 1 level brighter). Other colour spaces and ranges (BT.709, full-range JPEG) keep PyAV's
    conversion, which honours them."""
    width, height = width or frame.width, height or frame.height
    if frame.format.name == "yuv420p" and (frame.width, frame.height) == (width, height) \
            and width % 2 == 0 and height % 2 == 0 and frame.colorspace in BT601_COLORSPACES \
            and frame.color_range != FULL_RANGE:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24", width=width, height=height)


class FileSource:
    """A video file (or a finite URL) decoded with PyAV."""

    def __init__(self, path, container=None, name=None, warn=warn_stderr):
        self.path, self.warn = path, warn
        name = name or str(path)
        try:
            self.container = container or av.open(str(path))
            self.stream = self.container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError) as e:
            raise UserError(f"{name}: not a readable video ({_reason(e)})") from None
        self.stream.thread_type = "AUTO"
        stream = self.stream
        fps = _stream_fps(stream)
        frames = stream.frames or _estimate_frames(self.container, stream, fps)
        live = self.container.duration is None and stream.duration is None and not stream.frames
        self._frames = self.container.decode(stream)
        try:
            self._first = next(self._frames)
        except (StopIteration, av.FFmpegError) as e:
            self.container.close()
            raise UserError(f"{name}: no decodable video frames ({_reason(e)})") from None
        stem = Path(str(path).split("?")[0]).stem or "stream"
        self.info = SourceInfo(name, stem, self._first.width, self._first.height, fps, frames, live)

    def __iter__(self):
        size = dict(width=self.info.width, height=self.info.height)  # a stream may change size midway
        first, self._first = self._first, None
        if first is not None:
            yield rgb_array(first, **size)
        read = 1 if first is not None else 0
        try:
            for frame in self._frames:
                yield rgb_array(frame, **size)
                read += 1
        except av.FFmpegError as e:
            if self.info.live:
                raise SourceLost(f"{self.info.name}: stream lost ({_reason(e)})") from None
            self.warn(f"{self.info.name}: decoding stopped early after {read} frames ({_reason(e)}); "
                      f"the rest is skipped")
            return
        self._check_complete(read)

    def _check_complete(self, read):
        """Threaded decoding ends quietly where a file is cut off: compare with what the container declares."""
        declared, exact = (self.stream.frames, True) if self.stream.frames else (self.info.frames, False)
        if self.info.live or not declared:
            return
        if declared - read > (0 if exact else max(2, declared // 20)):
            self.warn(f"{self.info.name}: the file ended early: read {read} of {'the' if exact else 'about'} "
                      f"{declared} frames it declares (truncated or damaged)")

    def close(self):
        self.container.close()


class FolderSource:
    """Every video file in a folder, sorted by name, as one stream: the first file sets the size and frame
    rate; later files of another size are resized to it. Files that aren't video are skipped."""

    def __init__(self, folder, warn=warn_stderr):
        self.warn = warn
        self.files = sorted(p for p in Path(folder).iterdir()  # hidden files: partial outputs, editors' temps
                            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
        if not self.files:
            raise UserError(f"{folder}: no video files in this folder ({', '.join(sorted(VIDEO_SUFFIXES))})")
        first = FileSource(self.files[0], warn=warn)
        counts = [first.info.frames] + [_probe_frames(p, warn) for p in self.files[1:]]
        first.close()
        frames = None if None in counts else sum(counts)
        self.info = SourceInfo(str(folder), Path(folder).name, first.info.width, first.info.height,
                               first.info.fps, frames, False)

    def __iter__(self):
        size = (self.info.width, self.info.height)
        for path in self.files:
            source = FileSource(path, warn=self.warn)
            try:
                for frame in source:
                    if (frame.shape[1], frame.shape[0]) != size:
                        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                    yield frame
            finally:
                source.close()

    def close(self):
        pass


class SourceLost(Exception):
    """A live source stopped delivering frames."""


class LiveSource:
    """A camera or stream that may drop: on a lost connection, reopen with exponential backoff
    (reconnect_delay, 2x, 4x, ...) up to reconnect_attempts times, then raise a UserError."""

    def __init__(self, spec, opener, reconnect_attempts=5, reconnect_delay=1.0, first_reader=None,
                 warn=warn_stderr):
        self.spec, self.opener, self.warn = spec, opener, warn
        self.attempts, self.delay = reconnect_attempts, reconnect_delay
        self.reader = first_reader or self._reopen(initial=True)
        self.info = self.reader.info
        self.info.live = True
        self.reconnects = 0

    def _reopen(self, initial=False):
        delay, last = self.delay, None
        for attempt in range(self.attempts + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            try:
                return self.opener(self.spec)
            except UserError as e:
                last = e
        what = "could not be opened" if initial else "was lost"
        raise UserError(f"{_describe(self.spec)} {what}; gave up after {self.attempts} reconnect attempts "
                        f"({last})")

    def __iter__(self):
        while True:
            try:
                for frame in self.reader:
                    if frame.shape[:2] != (self.info.height, self.info.width):
                        frame = cv2.resize(frame, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
                    yield frame
            except SourceLost:
                pass
            self.reader.close()
            self.warn(f"{_describe(self.spec)}: no frames; reconnecting")
            self.reader = self._reopen()
            self.reconnects += 1

    def close(self):
        self.reader.close()


def open_stream(url, warn=warn_stderr):
    options = {"rtsp_transport": "tcp"} if url.lower().startswith(("rtsp://", "rtsps://")) else {}
    try:
        container = av.open(url, options=options, timeout=(10.0, 10.0))
    except (av.FFmpegError, OSError) as e:
        raise UserError(f"{url}: cannot open stream ({_reason(e)})") from None
    return FileSource(url, container=container, name=url, warn=warn)


class CameraReader:
    """A local camera through OpenCV (BGR -> RGB)."""

    def __init__(self, index):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own message says what failed
        self.cap = cv2.VideoCapture(int(index))
        ok, frame = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok:
            self.cap.release()
            raise UserError(f"camera {index}: cannot open or read a frame")
        self._first = frame
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        fps = Fraction(fps).limit_denominator(1001) if 1 <= fps <= 240 else DEFAULT_FPS
        self.info = SourceInfo(f"camera {index}", f"camera{index}", frame.shape[1], frame.shape[0], fps, None, True)

    def __iter__(self):
        frame, self._first = self._first, None
        while True:
            if frame is None:
                ok, frame = self.cap.read()
                if not ok:
                    raise SourceLost(f"{self.info.name}: no frame")
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            frame = None

    def close(self):
        self.cap.release()


def _describe(spec):
    return f"camera {spec}" if str(spec).isdigit() else str(spec)


def _reason(e):
    if isinstance(e, StopIteration):
        return "empty"
    text = str(e).strip() or e.__class__.__name__
    return text.splitlines()[0]


def _stream_fps(stream):
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1 <= rate <= 1000:
            return Fraction(rate)
    return DEFAULT_FPS


def _estimate_frames(container, stream, fps):
    if stream.duration and stream.time_base:
        return max(1, round(stream.duration * stream.time_base * fps))
    if container.duration:
        return max(1, round(container.duration / av.time_base * fps))
    return None


def _probe_frames(path, warn):
    source = FileSource(path, warn=warn)
    try:
        return source.info.frames
    finally:
        source.close()


def prefetch(frames, maxsize=8, drop_oldest=False):
    """Read `frames` in a background thread into a bounded queue (decoding overlaps the consumer; memory
    stays bounded). `drop_oldest` (live sources) discards stale frames when the consumer falls behind.
    Exceptions in the reader reach the consumer. Closing the generator stops the thread."""
    q = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    done = object()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if drop_oldest and item is not done and not isinstance(item, BaseException):
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def reader():
        try:
            for frame in frames:
                if stop.is_set():
                    return
                put(frame)
            put(done)
        except BaseException as e:  # handed to the consumer, re-raised there
            put(e)

    thread = threading.Thread(target=reader, name="frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=2.0)


# ---------------------------------------------------------------- writer

# Fragmented MP4: a fragment (moof + mdat) is written every second and at each keyframe, so the file on disk
# plays up to its last whole fragment at any moment, even after SIGKILL or a power loss (no moov at the end).
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000",
                  "flush_packets": "1"}  # each fragment reaches the file as it is made, not a 32 KB buffer later


class VideoWriteError(UserError):
    """The video could not be written to the end (disk full, I/O error): the previous output is kept."""


def partial_path(path):
    """Where the video is written while it grows: hidden, beside the output, one name per output."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def incomplete_path(path, when=None):
    """Where a video that did not finish is kept: `<stem>.incomplete-<YYYYmmddTHHMMSS><suffix>`."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(when))
    return path.with_name(f"{path.stem}.incomplete-{stamp}{path.suffix}")


def publish(tmp, path):
    """Rename a finished temporary file into place, with the permissions a normal file would get; its data
    reaches the disk first, so a power loss right after leaves the old file or the new one, whole."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def keep_incomplete(partial, final):
    """Move an unfinished video to its visible `incomplete` name (a rename: no disk space needed)."""
    base = target = incomplete_path(final, os.stat(partial).st_mtime)
    n = 1
    while target.exists():
        n += 1
        target = base.with_name(f"{base.stem}-{n}{base.suffix}")
    os.replace(partial, target)
    return target


def _holds_frames(path):
    """A partial video holds at least one whole fragment (moof + its mdat); else it is only a header, a torn
    first fragment, or nothing, and not worth keeping. Walks the MP4's top-level boxes."""
    try:
        with open(path, "rb") as f:
            end, offset, last = os.fstat(f.fileno()).st_size, 0, None
            while offset + 8 <= end:
                f.seek(offset)
                header = f.read(16)
                size, kind = struct.unpack(">I4s", header[:8])
                if size == 1 and len(header) == 16:
                    size = struct.unpack(">Q", header[8:])[0]
                if size < 8 or offset + size > end:
                    return False
                if kind == b"mdat" and last == b"moof":
                    return True
                offset, last = offset + size, kind
    except OSError:
        pass
    return False


class VideoWriter:
    """H.264 (yuv420p) in a fragmented .mp4 through PyAV, at the source's size and frame rate.

    The video grows under a hidden name beside `path` (`partial_path`), locked against a second writer, and
    is renamed to `path` by close() only when it was finished cleanly: an interrupted run (Ctrl-C, SIGTERM)
    leaves a playable video of what was processed; after SIGKILL or a power loss the partial file plays up to
    its last fragment (at most about a second lost) and the next writer of the same output moves it to a
    visible `<stem>.incomplete-<time>.mp4` (`.recovered`, with a warning). A write error (disk full) keeps
    the previous `path` untouched, keeps what was written as `incomplete`, and raises VideoWriteError.

    Odd sizes are padded by one pixel (4:2:0 needs even sizes). threads: the encoder's (0: x264's own
    choice, about 1.5 per core). With `alert_audio` (float32 mono samples, sample_rate), an AAC track is muxed
    alongside: silence, with the clip mixed in at every time passed to add_audio_clip()."""

    def __init__(self, path, width, height, fps, crf=23, preset="veryfast", alert_audio=None, sample_rate=22050,
                 threads=0, warn=warn_stderr):
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = partial_path(self.path)
        self.recovered = None  # an unfinished video of an earlier run, moved to its `incomplete` name
        self._lock = self._claim_partial(warn)
        try:
            self.container = av.open(str(self.tmp), "w", format="mp4", options=dict(FRAGMENTED_MP4))
            self.stream = self.container.add_stream("libx264", rate=self.fps,
                                                    options={"crf": str(crf), "preset": preset})
            self.stream.width, self.stream.height = width + width % 2, height + height % 2
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = 1 / self.fps
            if threads:
                self.stream.codec_context.thread_count = threads
            self.audio = _AudioTrack(self.container, alert_audio, sample_rate) if alert_audio is not None else None
        except BaseException:
            self._release()
            raise
        self.frames, self.failed = 0, None

    def _claim_partial(self, warn):
        """Open and lock the partial file; move aside one left by a killed run (it holds a recording)."""
        while True:
            try:
                fd = os.open(self.tmp, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                raise VideoWriteError(f"{self.tmp}: cannot create the video ({e.strerror or e})") from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise UserError(f"{self.path}: another run is writing this video now ({self.tmp})") from None
                except OSError:  # a file system without locks (some network mounts): write unlocked
                    pass
            if os.fstat(fd).st_size == 0:
                return fd
            if not _holds_frames(self.tmp):
                os.ftruncate(fd, 0)
                return fd
            self.recovered = keep_incomplete(self.tmp, self.path)
            os.close(fd)  # that lock went with the old file; take a fresh one
            warn(f"{self.path}: an earlier run writing this video was killed; the video it left (playable up "
                 f"to its last second) is now {self.recovered}")

    def _release(self):
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def write(self, frame_rgb):
        if frame_rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame {frame_rgb.shape} does not match the video size {self.width}x{self.height}")
        if self.width % 2 or self.height % 2:
            frame_rgb = cv2.copyMakeBorder(frame_rgb, 0, self.height % 2, 0, self.width % 2, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
        frame.pts = self.frames
        try:
            self.container.mux(self.stream.encode(frame))
            self.frames += 1
            if self.audio:
                self.audio.fill_until(self.frames / self.fps)
        except (av.FFmpegError, OSError) as e:
            self.failed = self.failed or e
            raise VideoWriteError(f"{self.path}: writing the video failed ({_reason(e)})") from None

    def add_audio_clip(self, time_s):
        if self.audio:
            self.audio.add_clip(time_s)

    def close(self):
        """Flush the encoders and rename into place. With no frame written, nothing is left behind. When the
        video can't be finished (disk full), the previous output stays, what was written is kept as
        `incomplete`, and VideoWriteError says where."""
        if self.container is None:
            return
        try:
            error = self._finish()
            if error is None and self.frames:
                try:
                    publish(self.tmp, self.path)
                    return
                except OSError as e:
                    error = e
            if error is None or not _holds_frames(self.tmp):
                self.tmp.unlink(missing_ok=True)
                kept = "nothing was kept"
            else:
                kept = f"what was written is in {keep_incomplete(self.tmp, self.path)}"
        finally:
            self._release()
        if error is not None:
            previous = f"the previous {self.path.name} is kept" if self.path.exists() else "no video written"
            raise VideoWriteError(f"{self.path}: writing the video failed ({_reason(error)}); {previous}; {kept}")

    def _finish(self):
        """Flush and close the container; the error that kept the video from finishing, or None."""
        try:
            if self.frames and self.failed is None:
                self.container.mux(self.stream.encode(None))
                if self.audio:
                    self.audio.finish(self.frames / self.fps)
            self.container.close()
        except (av.FFmpegError, OSError) as e:
            return self.failed or e
        finally:
            self.container = None
        return self.failed  # a write that failed earlier leaves a gap: never published

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BackgroundWriter:
    """A VideoWriter fed through a bounded queue and run by its own thread, so that H.264 encoding overlaps
    detection. Same write / add_audio_clip / close calls, in the same order; an encoder error surfaces on the
    next call."""

    def __init__(self, writer, maxsize=4):
        self.writer, self.error = writer, None
        self.queue = queue.Queue(maxsize=maxsize)
        self.thread = threading.Thread(target=self._run, name="video-writer", daemon=True)
        self.thread.start()

    @property
    def frames(self):
        return self.writer.frames

    def write(self, frame_rgb):
        self._put((self.writer.write, frame_rgb))

    def add_audio_clip(self, time_s):
        self._put((self.writer.add_audio_clip, time_s))

    def close(self):
        """Encode what is queued, then flush and rename into place (see VideoWriter.close)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.writer.close()
        self._raise()

    def _put(self, item):
        self._raise()
        self.queue.put(item)

    def _raise(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self):
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    item[0](item[1])
                except Exception as e:  # handed to the producer
                    self.error = e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _AudioTrack:
    """Mono AAC: silence, plus a clip mixed in at given times. Written as video time advances, so the
    track streams like the video does."""

    CHUNK = 1024

    def __init__(self, container, clip, sample_rate):
        self.clip = np.asarray(clip, dtype=np.float32)
        self.rate = int(sample_rate)
        self.stream = container.add_stream("aac", rate=self.rate, layout="mono")
        self.container = container
        self.written = 0             # samples written so far
        self.starts = []             # sample offsets where the clip plays

    def add_clip(self, time_s):
        self.starts.append(max(self.written, int(round(time_s * self.rate))))

    def fill_until(self, time_s):
        end = int(time_s * self.rate)
        while self.written + self.CHUNK <= end:
            self._write(self.CHUNK)

    def finish(self, time_s):
        end = int(time_s * self.rate)
        while self.written < end:
            self._write(min(self.CHUNK, end - self.written))
        self.container.mux(self.stream.encode(None))

    def _write(self, n):
        start, samples = self.written, np.zeros(n, dtype=np.float32)
        for s in self.starts:
            lo, hi = max(start, s), min(start + n, s + len(self.clip))
            if lo < hi:
                samples[lo - start:hi - start] += self.clip[lo - s:hi - s]
        self.starts = [s for s in self.starts if s + len(self.clip) > start + n]
        frame = av.AudioFrame.from_ndarray(np.clip(samples, -1, 1)[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = self.rate, start
        self.container.mux(self.stream.encode(frame))
        self.written += n


# ---------------------------------------------------------------- reading back (tests, benchmarks)

def probe_video(path):
    """(frame count by decoding, average frame rate, width, height, has audio) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, Fraction(stream.average_rate), stream.width, stream.height, bool(container.streams.audio)


def read_frames(path, start=0, stop=None, step=1):
    """Frames [start:stop:step] of a video file as RGB arrays (a generator)."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if stop is not None and i >= stop:
                return
            if i >= start and (i - start) % step == 0:
                yield rgb_array(frame)
