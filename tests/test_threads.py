"""Threads on a shared machine: the passive OpenMP wait policy is in place before any script loads torch,
the thread caps reach torch, OpenCV and PyAV's codecs, and the cron loop makes way for the main job."""
import os
import subprocess
import sys
import time

import cv2
import pytest
import torch

from cctv.errors import UserError
import cctv.pipeline as cctv_pipeline
import cctv.threads as threads_module
from cctv.pipeline import JobConfig
from cctv.threads import ThreadGovernor, codec_threads, set_threads, usable_cores

SCRIPTS = ["prepare_mask_dataset.py", "train_mask_detector.py", "test_detector.py",
           "footages_to_frames.py", "finetune_mtcnn.py", "active_learning.py", "evaluate_models.py"]

# Imports a script as a module, then torch (the scripts that load it lazily load it later); at the moment torch
# is first imported, prints the wait policy OpenMP would read, and stops there (torch itself never loads).
PROBE = r"""
import importlib.abc, importlib.util, os, sys

class AtTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch":
            print("policy at torch import:", os.environ.get("OMP_WAIT_POLICY"), os.environ.get("GOMP_SPINCOUNT"),
                  flush=True)
            os._exit(0)

sys.meta_path.insert(0, AtTorch())
script = sys.argv[1]
sys.path.insert(0, os.path.dirname(script))
sys.argv = [script]
spec = importlib.util.spec_from_file_location("script_under_test", script)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import torch
"""


def _env_without_policy():
    return {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_sets_the_passive_wait_policy_before_torch_loads(repo_root, script):
    r = subprocess.run([sys.executable, "-c", PROBE, str(repo_root / script)], env=_env_without_policy(),
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "policy at torch import: PASSIVE None", r.stdout + r.stderr


def _policy_at_torch_import(repo_root, script, env):
    r = subprocess.run([sys.executable, "-c", PROBE, str(repo_root / script)], env=env,
                       capture_output=True, text=True, timeout=120)
    return r.stdout.strip() + r.stderr


def test_the_main_job_keeps_libgomps_spinning_since_it_governs_its_threads(repo_root):
    assert _policy_at_torch_import(repo_root, "cctv_mask_detector.py", _env_without_policy()) == \
        "policy at torch import: None 300000"  # libgomp's default, written out so that `import cctv` keeps it


def test_a_policy_the_user_set_is_kept(repo_root):
    for script in ("cctv_mask_detector.py", "train_mask_detector.py"):
        env = {**_env_without_policy(), "OMP_WAIT_POLICY": "ACTIVE"}
        assert _policy_at_torch_import(repo_root, script, env) == "policy at torch import: ACTIVE None"
        env = {**_env_without_policy(), "GOMP_SPINCOUNT": "1000"}
        assert _policy_at_torch_import(repo_root, script, env) == "policy at torch import: None 1000"


@pytest.fixture()
def restore_threads():
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENCV_FOR_THREADS_NUM")  # set_threads writes them
    env = {name: os.environ.get(name) for name in names}
    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    set_threads(before[0])
    cv2.setNumThreads(before[1])
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_the_cap_reaches_torch_opencv_and_the_encoder(restore_threads):
    assert set_threads(1) == 1
    assert (torch.get_num_threads(), cv2.getNumThreads(), codec_threads()) == (1, 1, 1)
    assert set_threads(2, device="cuda") == 2  # on a GPU encoding bounds the job: it may use the cap
    assert (torch.get_num_threads(), codec_threads()) == (2, 2)
    set_threads(2)
    assert (torch.get_num_threads(), cv2.getNumThreads(), codec_threads()) == (2, 2, 1)
    with pytest.raises(UserError, match="--threads must be 0"):
        set_threads(-1)


def test_lower_priority_nices_the_process_and_its_own_session():
    code = ("import os; from cctv.threads import lower_priority; before = os.nice(0); lower_priority(7); "
            "group = open('/proc/self/autogroup').read().split()[-1] if os.path.exists('/proc/self/autogroup') "
            "else 'none'; print(os.nice(0) - before, os.getsid(0) == os.getpid(), group)")
    r = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)),
                       capture_output=True, text=True, timeout=60, start_new_session=True)  # no terminal
    assert r.returncode == 0, r.stderr
    niced, own_session, group = r.stdout.split()
    assert niced == "7" and own_session == "True"
    assert group in ("7", "none")  # without a terminal (as under cron), its session is nicer as a whole


BUSY = r"""
import hashlib, sys, threading
data = bytes(1 << 20)
def spin():
    while True:
        hashlib.sha256(data).digest()  # releases the GIL: each thread keeps a core busy
for _ in range(int(sys.argv[1])):
    threading.Thread(target=spin, daemon=True).start()
threading.Event().wait()
"""


def test_the_governor_gives_way_while_another_process_keeps_the_cores_busy(restore_threads):
    set_threads(2)
    governor = ThreadGovernor(2, period_s=0.3)
    competitor = subprocess.Popen([sys.executable, "-c", BUSY, str(usable_cores())])
    try:
        deadline = time.monotonic() + 10
        while governor() != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert governor.threads == 1 and torch.get_num_threads() == 1
    finally:
        competitor.kill()
        competitor.wait()


def test_the_governor_takes_the_cores_back_when_they_are_free(restore_threads, monkeypatch):
    """/proc/stat's figures as a machine with 2 free cores would show them after a busy spell."""
    set_threads(1)
    clock_tick = os.sysconf("SC_CLK_TCK")
    samples = iter([(0.0, 0, 0), (1.0, 2 * clock_tick, 0), (2.0, 2 * clock_tick, 0)])  # (time, all busy, own)
    monkeypatch.setattr(ThreadGovernor, "_sample", staticmethod(lambda: next(samples)))
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads_module.time, "monotonic", lambda: 10.0)
    governor = ThreadGovernor(2, period_s=0.5)
    assert governor() == 1  # the last second: others kept 2 cores busy
    assert governor() == 2 and torch.get_num_threads() == 2  # then nothing else ran
    assert governor.changes == 2


def test_the_job_keeps_fixed_threads_when_told(restore_threads, monkeypatch):
    set_threads(2)
    monkeypatch.setattr(ThreadGovernor, "_sample", staticmethod(lambda: (time.monotonic() - 60, 0, 0)))
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 1)  # as if the other core were taken
    for cfg in (JobConfig(fixed_threads=True), JobConfig(device="cuda")):
        assert cctv_pipeline._thread_governor(cfg)() == 2
    governor = cctv_pipeline._thread_governor(JobConfig())
    assert governor() == 1 and torch.get_num_threads() == 1
    governor.restore()  # the job is over: the caller's threads again
    assert torch.get_num_threads() == 2
