"""The program: `run` (the default), `show DIR`, `diff DIR_A DIR_B`, `explain`, `sweep`, `report DIR` or `port A B`,
each a module of this package; returns the exit code."""

from __future__ import annotations

import io
import signal
import sys
import threading
from collections.abc import Callable

from ..environment import broken_package, missing_working_directory
from ..signals import FAILED, Terminated, how_stopped, raise_terminated
from . import diff, explain, port, report, run, show, sweep
from .console import StdoutLost, reader_gone, say, usage, warnings_as

COMMANDS: dict[str, Callable[[list[str], str], int]] = {
    "show": show.main, "diff": diff.main, "explain": explain.main, "sweep": sweep.main, "report": report.main,
    "port": port.main}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the command argv names (a run when it names none), as `prog` (default backend-compare)."""
    prog = prog or "backend-compare"
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show '·' or 'δ' gets escapes, not a traceback
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else argv
    command = COMMANDS.get(argv[0]) if argv else None
    # Python lets only the main thread set a signal handler; called from another thread, SIGTERM is left alone.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, raise_terminated) if on_main_thread else None
    try:
        if (gone := missing_working_directory()) is not None:  # relative paths, and frameworks, would fail
            return usage(f"{prog} {argv[0]}" if command else prog, gone)
        with warnings_as(prog):
            code = command(argv[1:], prog) if command else run.main(argv, prog)
        if StdoutLost.reason is not None:  # what was asked to be saved is saved; the printing is what failed
            say(prog, f"error: standard output could not be written ({StdoutLost.reason}): the results were not "
                      "printed; send them to a file or a terminal that takes them")
            return max(code, FAILED)
        return code
    except (KeyboardInterrupt, Terminated) as stop:  # training and saving handle their own: imports, checks
        how, code = how_stopped(stop)
        say(prog, f"{how}; no file was written")
        return code
    except BrokenPipeError:  # the reader left (`| head`): not an error of ours, and nothing more to say
        reader_gone()
        return 0
    except Exception as err:  # a package imported when it is first needed (sklearn, jsonschema, pyarrow)
        if (broken := broken_package(err)) is None:
            raise
        return usage(prog, broken)
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_term)
