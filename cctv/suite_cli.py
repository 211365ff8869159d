"""The `spb` CLI (spb-cli, installed in .venv) as this project runs it: the venv's own copy (it is on PATH only
while the venv is active), credentials checked first (without them spb only says "No such project"), and the
`spb download -d` folder created (spb writes project.json into it, and fails when it does not exist).
`spb upload dataset -d DIR` runs inside DIR (spb-cli 0.19.4 opens each label file by its path relative to the
current folder, so `-d` from elsewhere uploads the images without their labels).

    python -m cctv.suite_cli upload dataset -p cctv-mask-detector -n entrance --include-label -y -d frames
    python -m cctv.suite_cli download -p cctv-mask-detector -d suite_download -y     # = make spb ARGS="..."
"""
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import UserError, cli_main

CONFIG = Path("~/.spb/config")
HOW_TO = ("run `.venv/bin/spb configure` (your Suite team name and access key, kept in ~/.spb/config), or set "
          "SPB_TEAM_NAME and SPB_ACCESS_KEY")


def spb_command() -> str:
    """The spb beside this Python (the venv's), else one on PATH."""
    beside = Path(sys.executable).parent / "spb"
    found = str(beside) if beside.is_file() else shutil.which("spb")
    if not found:
        raise UserError("spb: the Suite CLI is not installed (scripts/setup_env.sh installs spb-cli into .venv)")
    return found


def credentials_problem() -> str | None:
    """Why spb would have no credentials (as spb-cli looks for them: both environment variables, else the
    [default] profile of ~/.spb/config), or None when it has some."""
    if os.environ.get("SPB_TEAM_NAME") and os.environ.get("SPB_ACCESS_KEY"):
        return None
    if os.environ.get("SPB_TEAM_NAME") or os.environ.get("SPB_ACCESS_KEY"):
        return "only one of SPB_TEAM_NAME and SPB_ACCESS_KEY is set: spb needs both"
    path = CONFIG.expanduser()
    config = configparser.ConfigParser()
    try:
        config.read(path)
    except configparser.Error as e:
        return f"{path} is not readable as spb's config ({e.__class__.__name__})"
    if not path.is_file():
        return f"no Suite credentials (no {path}, no SPB_TEAM_NAME/SPB_ACCESS_KEY): {HOW_TO}"
    profile = config["default"] if config.has_section("default") else {}
    if not (profile.get("team_name") and profile.get("access_key")):
        return f"{path} has no [default] profile with team_name and access_key: {HOW_TO}"
    return None


def check_credentials():
    problem = credentials_problem()
    if problem:
        raise UserError(problem)


def dir_option(args):
    """(the folder of `-d DIR` / `--dir DIR` / `--dir=DIR` or None, the arguments without it)."""
    for i, a in enumerate(args):
        if a in ("-d", "--dir") and i + 1 < len(args):
            return Path(args[i + 1]), args[:i] + args[i + 2:]
        if a.startswith("--dir="):
            return Path(a.split("=", 1)[1]), args[:i] + args[i + 1:]
    return None, args


def run_spb(args) -> int:
    args, cwd = list(args), None
    command = spb_command()
    if args[:1] not in (["configure"], ["--help"], ["-h"], []):
        check_credentials()
    folder, rest = dir_option(args)
    if folder is not None and args[:1] == ["download"]:
        folder.mkdir(parents=True, exist_ok=True)
    if folder is not None and args[:2] == ["upload", "dataset"]:
        if not folder.is_dir():
            raise UserError(f"{folder}: no such folder to upload")
        args, cwd = rest, folder
    return subprocess.run([command, *args], cwd=cwd).returncode


@cli_main
def main(argv=None):
    return run_spb(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
