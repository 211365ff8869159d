"""What the crash-safe video costs: H.264 encode-and-write rate and file size of VideoWriter's fragmented
MP4 (a fragment every second, flushed as made, so a SIGKILLed video still plays) against the earlier
`+faststart` MP4 (moov written at the end, the whole file rewritten once), on the same frames, in
alternating rounds (timings on a shared machine are noisy: compare the medians).

    .venv/bin/python benchmarks/bench_video_writer.py --frames 150 --rounds 3
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))

from cctv import video  # noqa: E402

LAYOUTS = {"faststart (before)": {"movflags": "+faststart"}, "fragmented (now)": dict(video.FRAGMENTED_MP4)}


def encode(frames, path, options, threads):
    saved, video.FRAGMENTED_MP4 = video.FRAGMENTED_MP4, options
    try:
        start = time.perf_counter()
        with video.VideoWriter(path, frames[0].shape[1], frames[0].shape[0], 25, threads=threads) as writer:
            for frame in frames:
                writer.write(frame)
        return len(frames) / (time.perf_counter() - start), os.path.getsize(path)
    finally:
        video.FRAGMENTED_MP4 = saved


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--footage", default=str(SHARED / "data" / "footage" / "four_people_masking.mp4"))
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="encoder threads (the job uses 1 on the CPU)")
    opt = p.parse_args()
    frames = list(video.read_frames(opt.footage, stop=opt.frames))
    rates, sizes = {name: [] for name in LAYOUTS}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(opt.rounds):
            for name, options in LAYOUTS.items():
                rate, sizes[name] = encode(frames, Path(tmp) / f"{r}.mp4", options, opt.threads)
                rates[name].append(rate)
    h, w = frames[0].shape[:2]
    print(f"{len(frames)} frames {w}x{h} of {Path(opt.footage).name}, {opt.threads} encoder thread(s), "
          f"{opt.rounds} alternating rounds")
    print(f"{'layout':<20} {'frames/s (median)':>18} {'all rounds':>24} {'size KB':>9}")
    for name in LAYOUTS:
        print(f"{name:<20} {statistics.median(rates[name]):>18.1f} "
              f"{' '.join(f'{x:.1f}' for x in rates[name]):>24} {sizes[name] / 1024:>9.0f}")


if __name__ == "__main__":
    main()
