"""A framework's exception as one line, for reports and refusals."""

from __future__ import annotations


def error_line(err: BaseException) -> str:
    """An exception as one line: its type and the line of its message that says what happened (MXNet
    puts a C++ traceback first and the reason last)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    reason = (lines[-1] if lines[0].startswith("Traceback") else lines[0]) if lines else ""
    reason = reason.removeprefix(f"{type(err).__name__}:").strip()
    return f"{type(err).__name__}: {reason[:300]}" if reason else type(err).__name__
