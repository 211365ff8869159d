"""Several cameras on Ray vs the in-process job, and what Ray costs the single-source job.

1. Throughput: N sources (copies of one clip, `--frames` each) through the Ray job (camera tasks, detector
   actors batching across cameras) vs the in-process job run on each source one after the other, same cores.
   Total frames/s = all sources' frames / wall time. Ray twice: with starting its detector actors (a job's
   cost), and with detectors already running (a long-running service); starting Ray itself is timed on its
   own. Rounds alternate in-process and Ray.
2. Start-up: wall time of the single-source job (a few frames, fresh process) as shipped (never imports ray)
   vs the same process with `import ray` and with `ray.init()` done first: what Ray would add if the single
   source ran on it.

    .venv/bin/python benchmarks/bench_ray.py --cpus 2 --sources 1 2 4
    .venv/bin/python benchmarks/bench_ray.py --device cuda --cpus 8 --sources 1 2 4 8 --clip ..._1080p.mp4
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CCTV_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))

from cctv.cameras import cameras_from_paths  # noqa: E402
from cctv.pipeline import JobConfig, run_job  # noqa: E402

STARTUP = r"""
import sys, time
t = time.perf_counter()
if sys.argv[1] != "none":
    import ray
    if sys.argv[1] == "init":
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024 ** 2, logging_level="WARNING")
sys.path.insert(0, sys.argv[2])
import cctv_mask_detector
cctv_mask_detector.run(footage_path=sys.argv[3], output_path=sys.argv[4], detector_model_path=sys.argv[5],
                       max_frames=4, no_voice=True, quiet=True)
print(time.perf_counter() - t)
"""


def parse_opt():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", default=str(SHARED / "data" / "footage" / "four_people_masking.mp4"))
    p.add_argument("--frames", type=int, default=48, help="frames per source")
    p.add_argument("--sources", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--cpus", type=int, default=2, help="cores for Ray, and torch threads in-process")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--detector_model_path", default=str(ROOT / "models" / "detector.pt"))
    p.add_argument("--rounds", type=int, default=2, help="in-process then Ray, this many times; best kept")
    p.add_argument("--startup_rounds", type=int, default=3)
    p.add_argument("--skip_startup", action="store_true")
    return p.parse_args()


def in_process(cams):
    t = time.perf_counter()
    frames = sum(run_job(replace(c.cfg, output_path=c.cfg.output_path.replace(".mp4", "_inproc.mp4"))).frames
                 for c in cams)
    return frames / (time.perf_counter() - t)


def on_ray(cams, base, detectors=None):
    """Total frames/s of one Ray job, and its detectors (started here unless given)."""
    from cctv.ray_job import RayJob

    t = time.perf_counter()
    job = RayJob(cams, base, checkpoint_frames=10 ** 6, detectors=detectors).start()
    results = job.wait()
    assert not job.errors, job.errors
    return sum(r["frames"] for r in results.values()) / (time.perf_counter() - t), job.detectors


def startup(opt, out):
    clip = str(SHARED / "data" / "footage" / "channy_in.gif")
    times = {"none": [], "import": [], "init": []}
    for _ in range(opt.startup_rounds):
        for mode in times:
            r = subprocess.run([sys.executable, "-c", STARTUP, mode, str(ROOT), clip, str(Path(out) / f"{mode}.mp4"),
                                opt.detector_model_path], capture_output=True, text=True, check=True,
                               env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
            times[mode].append(float(r.stdout.strip().splitlines()[-1]))
    return {mode: min(t) for mode, t in times.items()}


def main(opt):
    import ray

    from cctv.ray_job import init_ray

    base = JobConfig(detector_model_path=opt.detector_model_path, device=opt.device, batch_size=opt.batch_size,
                     threads=opt.cpus, max_frames=opt.frames, no_voice=True, quiet=True)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        init_ray(num_cpus=opt.cpus, object_store_memory=500 * 1024 ** 2)
        ray_start = time.perf_counter() - t
        try:
            for n in opt.sources:
                cams = cameras_from_paths([opt.clip] * n, base, out)
                best_in = best_cold = best_warm = 0.0
                for _ in range(opt.rounds):
                    best_in = max(best_in, in_process(cams))
                    cold, detectors = on_ray(cams, base)
                    warm, _ = on_ray(cams, base, detectors)  # a long-running service: detectors loaded once
                    best_cold, best_warm = max(best_cold, cold), max(best_warm, warm)
                    for d in detectors:  # they hold the cores: the next job starts its own
                        ray.kill(d)
                rows.append((n, best_in, best_cold, best_warm))
                print(f"{n} sources: in-process {best_in:.2f} frames/s, Ray {best_cold:.2f} (detectors started) "
                      f"{best_warm:.2f} (detectors running)", flush=True)
        finally:
            ray.shutdown()
        starts = None if opt.skip_startup else startup(opt, out)
    head = (f"{'sources':>7}  {'in-process frames/s':>19}  {'Ray, detectors started':>22}  "
            f"{'Ray, detectors running':>22}  {'running/in-process':>18}")
    print(f"\n{Path(opt.clip).name}, {opt.frames} frames per source, {opt.cpus} cores, {opt.device}; "
          f"best of {opt.rounds} alternating rounds")
    print(head)
    for n, a, b, c in rows:
        print(f"{n:>7}  {a:>19.2f}  {b:>22.2f}  {c:>22.2f}  {c / a:>17.2f}x")
    print(f"ray.init() (embedded, {opt.cpus} CPUs): {ray_start:.1f} s")
    if starts:
        print(f"single-source job, 4 frames, fresh process (best of {opt.startup_rounds}): as shipped "
              f"{starts['none']:.1f} s; with `import ray` {starts['import']:.1f} s; with ray.init() "
              f"{starts['init']:.1f} s")


if __name__ == "__main__":
    main(parse_opt())
