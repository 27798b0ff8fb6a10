"""What the commands print: results on stdout (a reader that has gone is no error), one-line errors and
warnings on stderr, each starting with the program's name as the command was called."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from ..signals import FAILED, USAGE


class UsageError(Exception):
    """A user's mistake: one line on stderr, exit code 2."""


class StdoutLost:
    """Whether standard output failed in this process (closed, or a full device): the command goes on to save
    what it was asked to, says so in one line, and exits 1 (stdout is the process's, and so is this)."""

    reason: str | None = None


def write_stdout(text: str) -> None:
    """Print; a reader that has gone (a closed pipe) is no reason to stop saving the results, and neither is
    an output that cannot be written (a closed descriptor, a full disk): that is one line, then exit 1."""
    try:
        if sys.stdout is None:  # started with stdout closed
            raise OSError(errno.EBADF, "standard output is closed")
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()
    except OSError as err:
        if StdoutLost.reason is None:
            StdoutLost.reason = err.strerror or str(err)
        with contextlib.suppress(OSError, AttributeError, ValueError):
            reader_gone()


def reader_gone() -> None:
    """stdout's pipe is closed (or stdout cannot be written): point it at /dev/null, so the flush at exit
    raises no second error."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the process's stdout from now on)
        return
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def usage(prog: str, err: Exception | str) -> int:
    """The user's mistake, in one line: exit 2."""
    say(prog, f"error: {err}")
    return USAGE


def failed(prog: str, message: str) -> int:
    """Something could not be done or written: one line, exit 1."""
    say(prog, f"error: {message}")
    return FAILED


@contextlib.contextmanager
def warnings_as(prog: str) -> Iterator[None]:
    """While it lasts, a warning is one line on stderr in the program's name; the previous way after."""
    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        say(prog, f"warning: {message}")

    previous, warnings.showwarning = warnings.showwarning, show
    try:
        yield
    finally:
        warnings.showwarning = previous


def on_disk(written: list[str]) -> str:
    return f"written whole: {', '.join(written)}; nothing else" if written else "nothing was written"
