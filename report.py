"""The compliance report: one self-contained HTML file (opens from disk, nothing fetched) for a run, a folder of
runs, or a date range of a camera's runs: the share of faces with a mask over time, people per hour, the
alerts with their snapshots, the runs and the models they used.

    python report.py --runs runs/cctv/four_people_masking.mp4 --output runs/cctv/four_people.report.html
    python report.py --runs runs/cctv --from 2026-12-01 --to 2026-12-07 --camera camera0 --output week.html
"""
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cctv.cli import make_parser, settings_defaults  # noqa: E402
from cctv.errors import UserError, cli_main  # noqa: E402
from cctv.report import write_report  # noqa: E402


@dataclass
class ReportConfig:
    """The script's settings (its flags' names, --from and --to as since and until)."""
    runs: list
    output: str = "runs/report.html"
    since: str | None = None
    until: str | None = None
    camera: str | None = None


def parse_opt(argv=None):
    d = settings_defaults(ReportConfig)
    p = make_parser(__doc__)
    p.add_argument("--runs", nargs="+", required=True,
                   help="runs: a recording (<name>.mp4) or any of its files, or folders of runs (searched)")
    p.add_argument("--from", dest="since", default=d.since,
                   help="only what happened from this date (YYYY-MM-DD[THH:MM])")
    p.add_argument("--to", dest="until", default=d.until,
                   help="only what happened up to this date (a date: the whole day)")
    p.add_argument("--camera", default=d.camera, help="only this camera / source (its short name, e.g. camera0)")
    p.add_argument("--output", default=d.output, help="the HTML file to write")
    return p.parse_args(argv)


def run(*args, **kwargs):
    """run(runs, output=..., since=..., until=..., camera=...) with ReportConfig's fields; returns the report's
    facts."""
    c = ReportConfig(*args, **kwargs)
    if not str(c.output).endswith((".html", ".htm")):
        raise UserError(f"--output {c.output}: the report is an .html file")
    facts = write_report(c.runs, c.output, c.since, c.until, c.camera)
    print(f"report: {c.output} ({facts['sections']} section{'s' if facts['sections'] != 1 else ''}, "
          f"{facts['alerts']} alert{'s' if facts['alerts'] != 1 else ''}, {len(facts['skipped'])} skipped)")
    for line in facts["skipped"]:
        print(f"  skipped: {line}")
    return facts


@cli_main
def main(opt):
    return run(**vars(opt))


if __name__ == "__main__":
    main(parse_opt())
