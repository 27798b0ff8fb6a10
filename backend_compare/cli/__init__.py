"""The command line, a module per command: run (the default), show, diff, report, explain and sweep. Each
turns its arguments into settings (settings.RunSettings, checked once) and calls the library; options.py
is the run's parser, with the command lines it shows. `main(argv, prog)` runs one; backend_compare.entry
starts it once the signal handlers are in place.
"""

from __future__ import annotations

from .console import UsageError
from .options import make_parser, parse_settings
from .plan import Plan, prepare
from .program import main
from .settings import OPTION_RULES, RunSettings

__all__ = ["OPTION_RULES", "Plan", "RunSettings", "UsageError", "main", "make_parser", "parse_settings", "prepare"]
