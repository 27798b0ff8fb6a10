"""The program's entry point: signal handlers first, then the imports (a third of a second), so Ctrl-C
or SIGTERM at any moment of the program's life ends it with one line and exit 130 or 143."""

from __future__ import annotations

import signal
import sys
import threading

from .environment import broken_package
from .signals import USAGE, Terminated, how_stopped, raise_terminated, signal_again

__all__ = ["Terminated", "how_stopped", "main", "raise_terminated"]


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
            return code
        except Exception as err:  # a package the program imports, missing or failing as it is imported
            if (broken := broken_package(err)) is None:
                raise
            print(f"{prog or 'backend-compare'}: error: {broken}", file=sys.stderr)
            return USAGE
        return run(argv, prog)
    finally:
        if on_main_thread:  # what is left is flushing and the frameworks' own exit handlers
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
