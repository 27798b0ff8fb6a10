"""The program's entry point: signal handlers first, then the imports (a third of a second), so Ctrl-C
or SIGTERM at any moment of the program's life ends it with one line and exit 130 or 143."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from .environment import broken_package
from .signals import USAGE, Terminated, how_stopped, raise_terminated, signal_again

__all__ = ["Terminated", "how_stopped", "main", "raise_terminated"]


STOPPED = (130, 143)  # the exit codes of a run a signal stopped


def leave(code: int) -> None:
    """Exit now, stopped by a signal with everything said and undone (workers ended, staging folders removed):
    without the interpreter's finalization, where a library's thread that the signal caught mid-work (writing a
    file, rendering a plot) may call into a finalizing interpreter and abort the process (exit -6, measured once in
    a CI run of the signal tests) instead of exiting 130 or 143."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """`backend-compare` and `python compare.py`: the program in backend_compare.cli, loaded after the
    handlers are in place; once it has returned, a late signal cannot interrupt the interpreter's exit."""
    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:
        signal.signal(signal.SIGTERM, raise_terminated)
        sys.unraisablehook = signal_again
    try:
        try:
            from .cli import main as run
        except (KeyboardInterrupt, Terminated) as stop:
            how, code = how_stopped(stop)
            print(f"{prog or 'backend-compare'}: {how}; no file was written", file=sys.stderr)
            if on_main_thread:
                leave(code)
            return code
        except Exception as err:  # a package the program imports, missing or failing as it is imported
            if (broken := broken_package(err)) is None:
                raise
            print(f"{prog or 'backend-compare'}: error: {broken}", file=sys.stderr)
            return USAGE
        code = run(argv, prog)
        if on_main_thread and code in STOPPED:
            leave(code)
        return code
    finally:
        if on_main_thread:  # what is left is flushing and the frameworks' own exit handlers
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
