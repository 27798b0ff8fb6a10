"""Signals and exit codes: SIGTERM raised as an exception where the program is, as Ctrl-C is, so either ends
it with one line and exit 143 or 130. Light: backend_compare.entry installs these handlers before the command
line (backend_compare.cli) and its imports load."""

from __future__ import annotations

import signal
import sys
import threading

AGAIN_SECONDS = 0.005
USAGE, FAILED = 2, 1  # exit codes: the user's mistake; something did not finish or could not be written


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so it stops as cleanly as on Ctrl-C (exit 143)."""


def raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def signal_again(unraisable: object) -> None:
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
