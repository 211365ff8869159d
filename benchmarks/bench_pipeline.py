"""End-to-end throughput and memory of the main job (cctv_mask_detector.py), beside facenet-pytorch.

Ours: frames/s of the whole job (decode, detect, classify, draw, encode H.264) and of our MTCNN detect alone,
on the same frames and thread count as facenet-pytorch's MTCNN detect-only. facenet-pytorch is timed when
it imports here, or in the side environment (--facenet_python, default .venv-facenet from `make bench-env`,
see bench_mtcnn.py); else the table shows 'n/a' and the figure recorded on a 2-core machine
(../shared/README.md).

Memory: peak RSS of the job on a clip and on the same clip looped 10x, each in a fresh subprocess.

    .venv/bin/python benchmarks/bench_pipeline.py --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))

import cctv_mask_detector  # noqa: E402,F401  first: the job's threading (spinning waits, a ThreadGovernor) before torch loads
from cctv.pipeline import default_batch_size  # noqa: E402
from cctv.threads import set_threads  # noqa: E402

RECORDED_FACENET_FPS = {(480, 270): 30.0, (960, 506): 9.0, (1920, 1080): 3.1}  # shared/README.md, 2 cores
TARGET_RATIO = 1.5

MEMORY_SCRIPT = r"""
import json, resource, sys
sys.path.insert(0, sys.argv[1])
import cctv_mask_detector
cctv_mask_detector.run(footage_path=sys.argv[2], output_path=sys.argv[3], detector_model_path=sys.argv[4],
                       threads=int(sys.argv[5]), no_voice=True, quiet=True, **json.loads(sys.argv[6]))
try:  # this process's own peak: ru_maxrss would carry the parent's peak across fork and exec
    print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", default=str(SHARED / "data" / "footage" / "four_people_masking.mp4"))
    p.add_argument("--frames", type=int, default=100, help="frames of the clip to time")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (facenet-pytorch then runs batched on it too)")
    p.add_argument("--motion", default="auto", help="the job's --motion (auto: motion gating; off: every frame whole; "
                                                   "see bench_motion.py)")
    p.add_argument("--batch_size", type=int, default=None, help="frames per batch (default 4 on cpu, 32 on cuda)")
    p.add_argument("--detector_model_path", default=str(ROOT / "models" / "detector.pt"))
    p.add_argument("--facenet_python", default=str(ROOT / ".venv-facenet" / "bin" / "python"),
                   help="python of the side environment with facenet-pytorch (`make bench-env`)")
    p.add_argument("--rounds", type=int, default=2,
                   help="ours then facenet-pytorch, this many times; each keeps its best (a shared machine drifts)")
    p.add_argument("--memory_frames", type=int, default=50, help="frames in the memory test's base clip")
    p.add_argument("--skip_memory", action="store_true")
    return p.parse_args()


def cut_clip(src, dst, frames, loops=1):
    """The first `frames` frames of `src`, repeated `loops` times, as an H.264 file."""
    from cctv.video import VideoWriter, open_source, read_frames

    source = open_source(src)
    info = source.info
    source.close()
    clip = list(read_frames(src, stop=frames))
    with VideoWriter(dst, info.width, info.height, info.fps, crf=18) as writer:
        for _ in range(loops):
            for frame in clip:
                writer.write(frame.copy())
    return clip


def time_ours(clip_path, model, threads, batch_size, device, tmp, motion="auto"):
    import cctv_mask_detector

    start = time.perf_counter()
    summary = cctv_mask_detector.run(footage_path=str(clip_path), output_path=str(tmp / "bench_out.mp4"),
                                     detector_model_path=model, threads=threads, batch_size=batch_size,
                                     device=device, no_voice=True, quiet=True, motion=motion)
    return summary.frames / (time.perf_counter() - start), summary


def time_our_detect(frames, threads, batch_size, device):
    from mtcnn import MTCNN

    set_threads(threads, device)
    m = MTCNN(keep_all=True, device=device)
    m.detect(frames[:batch_size])
    start = time.perf_counter()
    for i in range(0, len(frames), batch_size):
        m.detect(frames[i:i + batch_size])
    return len(frames) / (time.perf_counter() - start)  # detect() returns arrays: the device is done


def time_facenet(frames, threads, side_python, tmp, device="cpu", batch_size=1, measure="fps"):
    """facenet-pytorch detect-only frames/s (on the CPU one frame per call, its usual use there; on a GPU in
    batches like ours), timed by benchmarks/facenet_worker.py here or in the side environment; or (None, why).
    measure: "fps" (wall clock), "cpu_fps" (per CPU-second), or None for both as a dict."""
    python = sys.executable
    try:
        import facenet_pytorch  # noqa: F401
    except Exception as e:
        if not side_python or not Path(side_python).is_file():
            return None, (f"facenet_pytorch does not import here ({e.__class__.__name__}) and there is no side "
                          f"environment ({side_python}; `make bench-env` builds it)")
        python = side_python
    frames_file = tmp / "frames.npy"
    np.save(frames_file, frames)
    worker = Path(__file__).with_name("facenet_worker.py")
    result = subprocess.run([python, str(worker), str(frames_file), str(threads), device,
                             str(batch_size if device != "cpu" else 1), "1"],
                            capture_output=True, text=True)
    if result.returncode:
        return None, f"facenet-pytorch run failed: {result.stderr.strip().splitlines()[-1:]}"
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return (found[measure] if measure else found), python


def time_decode(clip_path):
    from cctv.video import open_source

    source = open_source(str(clip_path))
    start = time.perf_counter()
    n = sum(1 for _ in source)
    source.close()
    return n / (time.perf_counter() - start)


def time_encode(frames, device, tmp):
    from cctv.video import VideoWriter

    start = time.perf_counter()
    with VideoWriter(tmp / "encode_only.mp4", frames.shape[2], frames.shape[1], 25,
                     threads=1 if device == "cpu" else 0) as writer:  # as the job does
        for frame in frames:
            writer.write(frame)
    return len(frames) / (time.perf_counter() - start)


def peak_rss_mib(clip, model, threads, tmp, **job_flags):
    """Peak RSS of the main job on `clip` in a fresh process (job_flags: more of its flags, e.g. record)."""
    out = tmp / f"mem_{Path(clip).stem}.mp4"
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(ROOT), str(clip), str(out), model,
                             str(threads), json.dumps(job_flags)], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"memory run failed on {clip}:\n{result.stderr}")
    return int(result.stdout.strip().splitlines()[-1]) / 1024  # VmHWM and ru_maxrss are KiB on Linux


def main():
    opt = parse_opt()
    if not Path(opt.clip).is_file():
        raise SystemExit(f"{opt.clip} not found: the footage lives in ../shared beside the repo")
    model = opt.detector_model_path
    batch = opt.batch_size or default_batch_size(opt.device)
    if not Path(model).is_file():
        raise SystemExit(f"{model} not found: train it with train_mask_detector.py")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip_path = tmp / "bench_clip.mp4"
        frames = np.stack(cut_clip(opt.clip, clip_path, opt.frames))
        n, h, w = frames.shape[:3]
        ours = ours_detect = theirs = 0.0
        for _ in range(opt.rounds):
            fps, summary = time_ours(clip_path, model, opt.threads, batch, opt.device, tmp, opt.motion)
            ours = max(ours, fps)
            ours_detect = max(ours_detect, time_our_detect(frames, opt.threads, batch, opt.device))
            fps, how = time_facenet(frames, opt.threads, opt.facenet_python, tmp, opt.device, batch)
            theirs = max(theirs, fps or 0.0)
        decode, encode = time_decode(clip_path), time_encode(frames, opt.device, tmp)
        theirs = theirs or None  # facenet-pytorch could not run: the recorded figure is the reference
        recorded = RECORDED_FACENET_FPS.get((w, h)) if opt.device == "cpu" else None
        reference = theirs if theirs else recorded
        print(f"\nEnd-to-end main job vs facenet-pytorch detect-only: {Path(opt.clip).name}, first {n} frames, "
              f"{w}x{h}, device {opt.device}, {opt.threads} threads, batch {batch}, --motion {opt.motion}, "
              f"{os.cpu_count()} CPUs, "
              f"best of {opt.rounds} rounds")
        rows = [
            ("ours end-to-end (decode+detect+classify+draw+encode)", f"{ours:.1f}"),
            ("ours detect only (MTCNN)", f"{ours_detect:.1f}"),
            ("video decode to RGB only (PyAV, this clip)", f"{decode:.1f}"),
            ("H.264 encode from RGB only (PyAV, the job's settings)", f"{encode:.1f}"),
            ("facenet-pytorch detect only, this run", f"{theirs:.1f}" if theirs else "n/a"),
            ("facenet-pytorch detect only, recorded (shared/README)", f"{recorded:.1f}" if recorded else "n/a"),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"{'':{width}}  frames/s")
        for name, value in rows:
            print(f"{name:{width}}  {value:>8}")
        if reference:
            ratio = ours / reference
            basis = "this run" if theirs else "recorded figure"
            target = (f" (target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})"
                      if opt.device == "cpu" else "")
            print(f"ratio ours end-to-end / facenet detect-only ({basis}): {ratio:.2f}x{target}")
        if not theirs:
            print(f"note: {how}")
        print(f"faces {summary.faces}, protected {summary.protected}, alerts {summary.alerts}")

        if not opt.skip_memory:
            base, looped = tmp / "mem_base.mp4", tmp / "mem_looped.mp4"
            cut_clip(opt.clip, base, opt.memory_frames)
            cut_clip(opt.clip, looped, opt.memory_frames, loops=10)
            rss_base = peak_rss_mib(base, model, opt.threads, tmp)
            rss_loop = peak_rss_mib(looped, model, opt.threads, tmp)
            diff = (rss_loop - rss_base) / rss_base * 100
            print(f"\nPeak memory (max RSS, fresh process each): {opt.memory_frames} frames {rss_base:.0f} MiB, "
                  f"same clip looped 10x ({10 * opt.memory_frames} frames) {rss_loop:.0f} MiB, "
                  f"difference {diff:+.1f}% (target < 10%: {'met' if abs(diff) < 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
