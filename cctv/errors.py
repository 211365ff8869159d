"""User-facing errors: one clear line and a non-zero exit, never a traceback for a user mistake."""
import signal
import sys
from functools import wraps


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a folder). The message names it."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) handled like Ctrl-C: cleanup runs, then exit 128 + the signal."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def cli_main(main):
    """Decorate a script's `main(opt)`: a UserError prints `error: <message>` and exits 2;
    Ctrl-C exits 130 (SIGTERM 143, SIGHUP 129: 128 + the signal) after whatever cleanup the script's own
    `finally` blocks did."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as e:
            signum = getattr(e, "signum", signal.SIGINT)
            name = signal.Signals(signum).name if signum != signal.SIGINT else ""
            print(f"interrupted{f' ({name})' if name else ''}", file=sys.stderr)
            sys.exit(128 + signum)

    return wrapper
