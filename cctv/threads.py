"""Threads on a machine shared with other work (several camera jobs, the cron fine-tuning, Ray actors).

torch's CPU threads are OpenMP's (libgomp here). By default a waiting OpenMP thread spins for a while
before it sleeps; when another process holds the other core, the spinning thread burns its time slice
while the thread it waits for is not even running, and 2 threads end up 12x slower than 1 (issue 21).
With OMP_WAIT_POLICY=PASSIVE a waiting thread sleeps at once, and under contention the job keeps about its
fair share (benchmarks/bench_contention.py, README "Threads and shared machines").

libgomp reads the policy once, when torch is loaded, so `prefer_passive_wait()` runs on `import cctv`,
before any cctv module imports torch; an OMP_WAIT_POLICY or GOMP_SPINCOUNT set by the user wins. The main job
is the exception: it keeps the spinning (20-30% faster on an idle machine) and a `ThreadGovernor` drops it to
one thread, which never waits for another, while other work keeps the cores busy.
`set_threads(n)` is called first thing by every script's run() (or main()) and by the benchmarks; never by library
code (a caller of run_job or run_training sets its own).
"""
import os
import sys
import time

from .errors import check_threads

_codec_threads = 0  # set by set_threads()


def prefer_passive_wait():
    """OMP_WAIT_POLICY=PASSIVE unless the user chose a policy or a spin count. Too late once torch is loaded."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's limit, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_threads(threads: int = 0, device: str = "cpu") -> int:
    """Caps the threads that torch, OpenCV and the H.264 encoder use at `threads` (0: the usable cores) and
    returns it. On the CPU, detection gets them: torch and OpenCV run one after the other in the same
    thread, and the encoder runs in one thread beside it (a few % of the work at 960x506). On a GPU, where
    encoding bounds the job, the encoder may use `threads` too (FFmpeg's own choice when `threads` is 0).
    The decoder keeps FFmpeg's frame threads: a 960x506 frame takes it about a millisecond, its threads
    sleep while they wait, and cctv.video's check for a file cut short relies on threaded decoding. A torch or OpenCV not imported yet reads the cap from the
    environment when it loads (as do child processes), so a script that never needs torch doesn't load it."""
    global _codec_threads
    check_threads(threads)
    _codec_threads = 1 if str(device).startswith("cpu") else threads
    threads = threads or usable_cores()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)
    return threads


def codec_threads() -> int:
    """Threads for the H.264 encoder: 0 (FFmpeg's choice) until set_threads."""
    return _codec_threads


def free_cores() -> int:
    """The usable cores that other work leaves free now (1-minute load average), at least 1. Measured by
    bench_contention.py, not used by the jobs: fewer threads give away the job's share of a busy machine."""
    return max(1, usable_cores() - round(os.getloadavg()[0]))


def lower_priority(niceness: int) -> None:
    """Make way for the jobs that must keep their pace (the camera): `niceness` steps nicer (os.nice). With
    Linux's autogroup scheduling (on by default) nice only ranks the processes of one session against each
    other, and each session gets an equal share; so a process without a terminal (started by cron) takes a
    session of its own and nices it as a whole. One with a terminal stays in it, so that Ctrl-C reaches it."""
    if niceness <= 0:
        return
    os.nice(niceness)
    if _has_terminal():
        return
    try:
        if os.getsid(0) != os.getpid():
            os.setsid()
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(niceness))
    except (OSError, AttributeError):  # a process-group leader, no autogroup, or not Linux: os.nice is all
        pass


def _has_terminal():
    try:
        os.close(os.open("/dev/tty", os.O_RDONLY))
        return True
    except OSError:
        return False


class ThreadGovernor:
    """Keeps torch's and OpenCV's threads at what the machine's other work leaves free: `threads` on an idle machine, fewer
    while other processes keep cores busy. Called once per frame (or batch) from the thread that runs torch
    (OpenMP's thread count belongs to the calling thread); it looks at the CPU accounting at most every
    `period_s`. Others' use = all cores' busy time minus this process's own, so this process's threads, spinning
    or not, never count against it."""

    def __init__(self, threads: int, period_s: float = 0.5, enabled: bool = True):
        self.cap, self.period_s = threads, period_s
        self.threads = threads
        self.changes = 0
        self._last = self._sample() if enabled else None

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                cpu = [int(v) for v in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                own = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):  # not Linux
            return None
        busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
        return time.monotonic(), busy, int(own[11]) + int(own[12])  # utime + stime, in clock ticks

    def __call__(self) -> int:
        if self._last is None or time.monotonic() - self._last[0] < self.period_s:
            return self.threads
        now = self._sample()
        wall, busy, own = (a - b for a, b in zip(now, self._last))
        self._last = now
        if wall <= 0:
            return self.threads
        others = max(0.0, (busy - own) / os.sysconf("SC_CLK_TCK") / wall)  # cores
        want = max(1, min(self.cap, int(usable_cores() - others + 0.5)))
        if want != self.threads:
            self._set(want)
            self.changes += 1
        return self.threads

    def restore(self):
        """Back to `threads` (the job is over: its caller's threads are its own again)."""
        if self.threads != self.cap:
            self._set(self.cap)

    def _set(self, threads):
        sys.modules["torch"].set_num_threads(threads)
        if "cv2" in sys.modules:  # OpenCV's pool spins a while too before its threads sleep
            sys.modules["cv2"].setNumThreads(threads)
        self.threads = threads
