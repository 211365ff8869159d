"""User-facing errors: one clear line and a non-zero exit, never a traceback for a user mistake."""
import sys
from contextlib import contextmanager
from functools import wraps


class UserError(Exception):
    """A problem with the user's input (a file, a flag, a folder). The message names it."""


@contextmanager
def user_errors(*kinds):
    """Errors of these kinds, raised by a library with a message that names the file or setting
    (mtcnn.MTCNNWeightsError), become UserErrors: one line for the user, no traceback."""
    try:
        yield
    except kinds as e:
        raise UserError(str(e)) from None


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
