"""What the tests that signal a child process share."""

from __future__ import annotations

import os
import signal
import subprocess


def interruptible() -> None:
    """preexec_fn for a child that a test interrupts: SIGINT back to its default, so that Python gives the
    child its KeyboardInterrupt even where the test runner itself was started with SIGINT ignored (a
    background job of a non-interactive shell, nohup), which every child would otherwise inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def outcome(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """process.communicate(timeout): its stdout and stderr. A process that does not end in time is the test's
    failure and must not outlive it: it is killed (with its session, when it leads one: a sweep's local
    cluster), then TimeoutExpired is raised."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            leads_session = os.getsid(process.pid) == process.pid
            os.killpg(process.pid, signal.SIGKILL) if leads_session else process.kill()
        except ProcessLookupError:
            pass
        process.communicate()
        raise
