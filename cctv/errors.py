"""User-facing errors: one clear line and a non-zero exit, never a traceback for a user mistake."""
import signal
import sys
from contextlib import contextmanager
from functools import wraps

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


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


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) handled like Ctrl-C: cleanup runs, then exit 128 + the signal."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_signals_as_interrupt():
    """SIGTERM and SIGHUP (a service stopped, a terminal closed) raise Interrupted, as Ctrl-C raises
    KeyboardInterrupt, so that `finally` blocks run: temporary files are removed, a video is closed and kept.
    (SIGKILL can't be caught: what must survive it is written to survive it.)"""
    def interrupt(signum, frame):
        raise Interrupted(signum)

    with handling_signals(STOP_SIGNALS[1:], interrupt):
        yield


@contextmanager
def handling_signals(signums, handler):
    """`handler` for `signums` inside the block, the previous handlers after; nothing outside the main
    thread (where Python can't handle signals)."""
    try:
        previous = {s: signal.signal(s, handler) for s in signums}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def cli_main(main):
    """Decorate a script's `main(opt)`: a UserError prints `error: <message>` and exits 2;
    Ctrl-C exits 130, SIGTERM 143, SIGHUP 129 (128 + the signal) after whatever cleanup the script's own
    `finally` blocks did."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            with stop_signals_as_interrupt():
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


def check_threads(threads, flag="--threads"):
    """torch's thread count: 0 means torch's own default; a negative one is a mistake torch only reports
    as a RuntimeError once work starts."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise UserError(f"{flag} must be 0 (torch's default) or more, got {threads!r}")
    return threads


def check_range(flag, value, lo=None, hi=None, lo_open=False, hi_open=False):
    """UserError naming the flag unless lo <= value <= hi (strict on an open side; None: no bound)."""
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and (value >= hi if hi_open else value > hi)
    if value != value or too_low or too_high:  # value != value: NaN
        if lo is not None and hi is not None:
            expected = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
        elif lo is not None:
            expected = f"{'above' if lo_open else 'at least'} {lo}"
        else:
            expected = f"{'below' if hi_open else 'at most'} {hi}"
        raise UserError(f"{flag} must be {expected}, got {value}")
    return value
