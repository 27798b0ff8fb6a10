"""What the tests that signal a child process share."""

from __future__ import annotations

import signal


def interruptible() -> None:
    """preexec_fn for a child that a test interrupts: SIGINT back to its default, so that Python gives the
    child its KeyboardInterrupt even where the test runner itself was started with SIGINT ignored (a
    background job of a non-interactive shell, nohup), which every child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
