"""`compare.py report DIR`: report.html of a saved run or sweep, written (again) into its folder."""

from __future__ import annotations

import functools
from pathlib import Path

from ..comparison.html import run_page
from ..comparison.saved import HTML, OutputError, html_page, load_run, write_atomic
from .console import UsageError, failed, usage
from .options import Parser
from .sweep_folders import is_sweep, sweep_report


def main(argv: list[str], prog: str) -> int:
    parser = Parser(prog=f"{prog} report", description="Write DIR/report.html for a run or sweep saved with --out: "
                                                        "one self-contained page, no network needed to open it.")
    parser.add_argument("run", metavar="DIR")
    try:
        args = parser.parse_args(argv)
        make = sweep_report(args.run) if is_sweep(args.run) else functools.partial(run_page, load_run(args.run))
    except (UsageError, ValueError) as err:  # the folder: the user's to mend
        return usage(prog, err)
    try:
        page = html_page(make)
    except OutputError as err:  # plotly failing: the environment's
        return failed(prog, str(err))
    target = Path(args.run) / HTML
    try:
        write_atomic(target, page.encode())
    except OSError as err:
        return failed(prog, f"{target} could not be written: {err.strerror or err}")
    print(f"{target} ({len(page) / 1e6:.1f} MB)")
    return 0
