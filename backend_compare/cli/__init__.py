"""The command line, a module per command: run (the default), show, diff, report, explain and sweep. Each
turns its arguments into settings (settings.RunSettings, checked once) and calls the library; options.py
is the run's parser, with the command lines it shows. `main(argv, prog)` runs one.

The names below load on first use: backend_compare.entry imports .signals, and installs the handlers,
before the program's imports (a third of a second) begin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .console import UsageError
    from .options import make_parser, parse_settings
    from .plan import Plan, prepare
    from .settings import OPTION_RULES, RunSettings

__all__ = ["OPTION_RULES", "Plan", "RunSettings", "UsageError", "main", "make_parser", "parse_settings", "prepare"]
HOMES = {"UsageError": "console", "make_parser": "options", "parse_settings": "options", "Plan": "plan",
         "prepare": "plan", "OPTION_RULES": "settings", "RunSettings": "settings"}


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The program (`backend-compare`, `python compare.py`): the command argv names; returns its exit code."""
    from .program import main as run

    return run(argv, prog)


def __getattr__(name: str) -> Any:
    if name in HOMES:
        return getattr(importlib.import_module(f".{HOMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
