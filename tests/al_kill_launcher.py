"""Test-only launcher: `python tests/al_kill_launcher.py STEP <active_learning.py arguments>` runs the loop
and SIGKILLs it right after STEP commits: a history step (`mtcnn-trained`, `version-committed`, ...) or
`batch-first-frame-moved` (a batch's first frame, sidecar and JPEG, has moved). The kill is real; only the
moment is chosen, by wrapping the loop's functions here, so the shipping code carries no test hook."""
import os
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import active_learning  # noqa: E402
from cctv.active_learning import batches, journal  # noqa: E402


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(step):
    if step == "batch-first-frame-moved":
        real_move, moved = batches._move, []

        def move(src, dst):
            done = real_move(src, dst)
            moved.append(dst)
            if len(moved) == 2:  # the first frame's sidecar, then its JPEG
                die()
            return done

        batches._move = move
        return
    real_log = journal.History.log

    def log(self, name, **fields):
        real_log(self, name, **fields)
        if name == step:
            die()

    journal.History.log = log


if __name__ == "__main__":
    kill_after(sys.argv[1])
    active_learning.main(active_learning.parse_opt(sys.argv[2:]))
