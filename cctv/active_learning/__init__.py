"""The active-learning loop (`active_learning.py`): low-confidence frames -> numbered labeling batches ->
labels -> fine-tuned MTCNN + classifier -> evaluated against the current models -> promoted when not worse.

A resumable state machine on the file system: every step commits its effect with a rename (or a marker
file written by rename) as its last action, so a kill at any point leaves either the old state or the new
one, and the next run carries on from there. One run at a time (a lock); every step is a line of
`history.jsonl`."""
from .loop import LoopConfig, run_loop, status_report, status_text

__all__ = ["LoopConfig", "run_loop", "status_report", "status_text"]
