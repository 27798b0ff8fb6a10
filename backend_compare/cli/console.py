"""What the commands print: results on stdout (a reader that has gone is no error), one-line errors and
warnings on stderr, each starting with the program's name as the command was called."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from ..signals import FAILED, USAGE


class UsageError(Exception):
    """A user's mistake: one line on stderr, exit code 2."""


def write_stdout(text: str) -> None:
    """Print; a reader that has gone (a closed pipe) is no reason to stop saving the results."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        reader_gone()


def reader_gone() -> None:
    """stdout's pipe is closed: point it at /dev/null, so the flush at exit raises no second error."""
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
