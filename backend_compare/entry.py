"""The program's entry point: signal handlers first, then the imports (a third of a second), so Ctrl-C
or SIGTERM at any moment of the program's life ends it with one line and exit 130 or 143."""

from __future__ import annotations

import signal
import sys
import threading


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so it stops as cleanly as on Ctrl-C (exit 143)."""


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


AGAIN_SECONDS = 0.005


def _signal_again(unraisable: object) -> None:
    """A signal's exception raised inside a finalizer or weakref callback cannot stop the program there:
    Python would print it as "Exception ignored" and go on. Deliver the signal again instead, so it is
    raised where the program is next; any other unraisable exception is printed as usual."""
    raised = getattr(unraisable, "exc_value", None)
    if isinstance(raised, Terminated | KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        # A moment later (an alarm), once this hook has returned: raised then in the program's own code.
        handler = raise_terminated if isinstance(raised, Terminated) else signal.default_int_handler
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, AGAIN_SECONDS)
        return
    sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]


def how_stopped(stop: BaseException) -> tuple[str, int]:
    """What stopped the program, in words, and its exit code."""
    return ("terminated", 143) if isinstance(stop, Terminated) else ("interrupted", 130)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """`backend-compare` and `python compare.py`: the program in backend_compare.cli, loaded after the
    handlers are in place; once it has returned, a late signal cannot interrupt the interpreter's exit."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        signal.signal(signal.SIGTERM, raise_terminated)
        sys.unraisablehook = _signal_again
    try:
        try:
            from .cli import main as run
        except (KeyboardInterrupt, Terminated) as stop:
            how, code = how_stopped(stop)
            print(f"{prog or 'backend-compare'}: {how}; no file was written", file=sys.stderr)
            return code
        return run(argv, prog)
    finally:
        if on_main_thread:  # what is left is flushing and the frameworks' own exit handlers
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
