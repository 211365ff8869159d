"""The compliance report (`report.py`, `cctv_mask_detector.py --report`): one self-contained HTML file."""
from .build import build_report, write_report

__all__ = ["build_report", "write_report"]
