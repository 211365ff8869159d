"""Shared code of the CCTV mask toolkit: classifier, crops, video I/O, label formats, alerts."""
from .threads import prefer_passive_wait

prefer_passive_wait()  # before any cctv module imports torch: OpenMP reads it once, when torch loads
