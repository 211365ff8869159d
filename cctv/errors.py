"""User-facing errors: one clear line and a non-zero exit, never a traceback for a user mistake."""
import sys
from functools import wraps


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a folder). The message names it."""


def cli_main(main):
    """Decorate a script's `main(opt)`: a UserError prints `error: <message>` and exits 2;
    Ctrl-C exits 130 after whatever cleanup the script's own `finally` blocks did."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def check_threads(threads, flag="--threads"):
    """torch's thread count: 0 means torch's own default; a negative one is a mistake torch only reports
    as a RuntimeError once work starts."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise UserError(f"{flag} must be 0 (torch's default) or more, got {threads!r}")
    return threads
