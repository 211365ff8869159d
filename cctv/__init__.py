"""Shared code of the CCTV mask toolkit: classifier, crops, video I/O, label formats, alerts."""
