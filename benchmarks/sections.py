"""One section of benchmarks/RESULTS.md, written by a script that measures only it: the section from its
heading to the next "## " heading is replaced whole (appended when there is none), the file written atomically."""

from __future__ import annotations

from pathlib import Path

from backend_compare.comparison.saved import write_atomic


def write_section(out: Path, heading: str, section: str) -> None:
    text = out.read_text() if out.exists() else ""
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    write_atomic(out, text.encode())
