"""Video in/out: sources stream real footage, the writer keeps size/frame rate and plays after an interrupt,
live sources reconnect with backoff and then fail with one clear error."""
import time
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

from cctv.errors import UserError
from cctv.video import (LiveSource, SourceInfo, SourceLost, VideoWriter, check_writable, open_source, prefetch,
                        probe_video, read_frames, rgb_array)


def test_file_sources_report_size_rate_and_frame_count(shared_dir):
    footage = shared_dir / "data" / "footage"
    mp4 = open_source(footage / "four_people_masking.mp4")
    assert (mp4.info.width, mp4.info.height, mp4.info.fps, mp4.info.frames) == (960, 506, 25, 414)
    gif = open_source(footage / "channy_in.gif")
    frames = list(gif)
    assert len(frames) == gif.info.frames == 20
    assert frames[0].shape == (270, 480, 3) and frames[0].dtype == np.uint8
    mp4.close()
    gif.close()


def test_decoded_frames_have_the_colours_pyav_gives(shared_dir):
    """Limited-range BT.601 4:2:0 frames are converted by OpenCV (8x faster than PyAV's swscale): the same RGB
    picture, channels in order, within a few levels at chroma edges; a frame of another size is scaled as
    before, and other colour spaces and ranges keep PyAV's conversion."""
    import av

    with av.open(str(shared_dir / "data" / "footage" / "four_people_masking.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 100:
                continue
            assert frame.format.name == "yuv420p"
            ours, pyav = rgb_array(frame).astype(int), frame.to_ndarray(format="rgb24").astype(int)
            assert ours.shape == pyav.shape == (506, 960, 3)
            assert np.abs(ours - pyav).mean() < 2.0
            assert np.percentile(np.abs(ours - pyav), 99) <= 8
            assert (np.abs(ours - pyav).mean(axis=(0, 1)) < 2.0).all()  # per channel: none swapped
            scaled = rgb_array(frame, width=480, height=254)
            assert scaled.shape == (254, 480, 3)
        # a full-range or BT.709 stream: PyAV's conversion, which honours them
        for colorspace, color_range in ((6, 2), (1, 1)):
            frame.colorspace, frame.color_range = colorspace, color_range
            assert np.array_equal(rgb_array(frame), frame.to_ndarray(format="rgb24"))


def test_folder_source_plays_every_video_in_order_and_skips_other_files(shared_dir, tmp_path):
    footage = shared_dir / "data" / "footage"
    for name in ("channy_in.gif", "channy_out.gif"):
        (tmp_path / name).symlink_to(footage / name)
    (tmp_path / ".DS_Store").write_bytes(b"\0junk")
    (tmp_path / "notes.txt").write_text("not a video")
    source = open_source(tmp_path)
    assert source.info.frames == 20 + 17
    assert sum(1 for _ in source) == 37


def test_writer_keeps_frame_count_rate_and_size(shared_dir, tmp_path):
    src = shared_dir / "data" / "footage" / "channy_in.gif"
    source = open_source(src)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, source.info.width, source.info.height, source.info.fps) as writer:
        for frame in prefetch(iter(source)):
            writer.write(frame)
    count, fps, width, height, has_audio = probe_video(out)
    assert (count, fps, width, height) == (20, Fraction(100, 13), 480, 270)
    assert not has_audio
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temporary file left
    # H.264 is lossy, but the picture must be the source's
    first = next(read_frames(out))
    assert np.abs(first.astype(int) - next(read_frames(src)).astype(int)).mean() < 6


def test_odd_sizes_are_padded_by_one_pixel_and_play(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 101, 57, 10) as writer:
        for i in range(5):
            writer.write(np.full((57, 101, 3), 40 * i, np.uint8))
    assert probe_video(out)[:4] == (5, 10, 102, 58)


def test_writer_closed_midway_leaves_a_playable_video_and_nothing_when_empty(tmp_path):
    out = tmp_path / "partial.mp4"
    writer = VideoWriter(out, 64, 48, 25)
    assert not out.exists()  # only a dot-prefixed temporary file while writing
    for i in range(7):
        writer.write(np.full((48, 64, 3), i * 30, np.uint8))
    writer.close()  # what the job does in its finally block on Ctrl-C
    assert probe_video(out)[:2] == (7, 25)
    empty = tmp_path / "empty.mp4"
    VideoWriter(empty, 64, 48, 25).close()
    assert not empty.exists() and [p.name for p in tmp_path.iterdir()] == ["partial.mp4"]


def test_alert_audio_is_muxed_at_the_alert_time(tmp_path):
    import av

    out = tmp_path / "audio.mp4"
    rate = 16000
    beep = (0.5 * np.sin(np.arange(rate // 2) * 2 * np.pi * 440 / rate)).astype(np.float32)
    with VideoWriter(out, 64, 48, 25, alert_audio=beep, sample_rate=rate) as writer:
        for i in range(75):  # 3 s
            writer.write(np.zeros((48, 64, 3), np.uint8))
            if i == 50:
                writer.add_audio_clip(2.0)
    with av.open(str(out)) as c:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    loud = np.flatnonzero(np.abs(samples) > 0.1) / rate
    assert abs(loud.min() - 2.0) < 0.1 and abs(loud.max() - 2.5) < 0.1
    assert abs(len(samples) / rate - 3.0) < 0.1


def test_missing_corrupt_and_non_video_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        open_source(tmp_path / "nope.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(UserError, match="corrupt.mp4: (not a readable video|no decodable)"):
        open_source(corrupt)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a video file"):
        open_source(text)
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(UserError, match="no video files"):
        open_source(empty)


def test_unwritable_output_folder_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(UserError, match="not writable"):
        check_writable(blocker / "out.mp4")


class FlakyCamera:
    """A stand-in camera whose connection delivers `frames_per_connection` frames, then drops; opening
    fails once `opens_allowed` connections have been made."""

    def __init__(self, frames_per_connection=3, opens_allowed=2):
        self.frames_per_connection, self.opens_allowed, self.opens = frames_per_connection, opens_allowed, 0
        self.open_times = []

    def __call__(self, spec):
        self.open_times.append(time.monotonic())
        if self.opens >= self.opens_allowed:
            raise UserError(f"camera {spec}: cannot open or read a frame")
        self.opens += 1
        return _Connection(self.frames_per_connection)


class _Connection:
    def __init__(self, n):
        self.n = n
        self.info = SourceInfo("camera 9", "camera9", 32, 24, Fraction(25), None, True)

    def __iter__(self):
        for i in range(self.n):
            yield np.full((24, 32, 3), i, np.uint8)
        raise SourceLost("camera 9: no frame")

    def close(self):
        pass


def test_lost_camera_reconnects_with_backoff_then_fails_clearly():
    camera = FlakyCamera(frames_per_connection=3, opens_allowed=2)
    source = LiveSource("9", camera, reconnect_attempts=3, reconnect_delay=0.05, warn=lambda m: None)
    got = []
    with pytest.raises(UserError, match="camera 9 was lost; gave up after 3 reconnect attempts"):
        for frame in source:
            got.append(frame)
    assert len(got) == 6 and source.reconnects == 1  # both connections' frames came through
    gaps = np.diff(camera.open_times[2:])  # the failed attempts after the second drop
    assert len(gaps) == 3 and all(gap >= 0.05 * 2 ** i * 0.99 for i, gap in enumerate(gaps))  # 0.05, 0.1, 0.2 s


def test_unreachable_stream_fails_after_retries():
    started = time.monotonic()
    with pytest.raises(UserError, match=r"rtsp://127\.0\.0\.1:9/cam could not be opened; gave up after 2"):
        open_source("rtsp://127.0.0.1:9/cam", reconnect_attempts=2, reconnect_delay=0.01)
    assert time.monotonic() - started < 20


def test_missing_camera_index_fails_clearly():
    with pytest.raises(UserError, match="camera 97 could not be opened"):
        open_source("97", reconnect_attempts=1, reconnect_delay=0.01)


def test_prefetch_memory_is_bounded_however_long_the_stream():
    frame_bytes = 256 * 256 * 3

    def endless():
        for i in range(400):
            yield np.full((256, 256, 3), i % 256, np.uint8)

    tracemalloc.start()
    for _ in prefetch(endless(), maxsize=4):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 12 * frame_bytes  # 400 frames passed through; only a handful were ever alive
