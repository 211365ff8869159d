"""How long the compliance report takes to make, for a live camera's run of an hour, a day and a week (one
timeline line per second, an alert every 15 minutes with two snapshots): what a `--report_every_s` rewrite
costs. Prints a table: timeline lines, alerts, seconds to build, file size.

    .venv/bin/python benchmarks/bench_report.py [--days 0.04 1 7]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cctv.report import write_report  # noqa: E402
from cctv.tables import format_table  # noqa: E402
from report_runs import footage_frame, write_run  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=float, nargs="+", default=[1 / 24, 1, 7])
    opt = p.parse_args()
    frame = footage_frame(ROOT.parent / "shared")
    rows = []
    for days in opt.days:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = int(days * 86400)
            write_run(Path(tmp) / "runs", seconds=seconds, alerts=tuple(range(60, seconds, 900)), snapshot_image=frame)
            started = time.perf_counter()
            facts = write_report([Path(tmp) / "runs"], Path(tmp) / "r.html")
            took = time.perf_counter() - started
            label = f"{days * 24:g} h" if days < 1 else f"{days:g} d"
            rows.append((label, seconds, facts["alerts"], f"{took:.1f}", (Path(tmp) / "r.html").stat().st_size // 1024))
    head = ("run", "timeline lines", "alerts", "build s", "KiB")
    print(format_table(head, rows, align="r" * len(head)))


if __name__ == "__main__":
    main()
