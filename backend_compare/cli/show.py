"""`compare.py show DIR`: the tables of a run or a sweep saved with --out, printed again."""

from __future__ import annotations

from ..comparison.report import FORMATS, render
from ..comparison.saved import load_run
from .console import UsageError, usage, write_stdout
from .options import Parser
from .sweep_folders import is_sweep, show_sweep


def main(argv: list[str], prog: str) -> int:
    parser = Parser(prog=f"{prog} show", description="Print the tables of a run or a sweep saved with --out.")
    parser.add_argument("run", metavar="DIR")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--params", action="store_true",
                        help="print the learned parameters alone: every element of every row's, by canonical name")
    try:
        args = parser.parse_args(argv)
        if is_sweep(args.run):
            if args.params:
                raise UsageError(f"--params applies to a run folder; {args.run!r} is a sweep's")
            write_stdout(show_sweep(args.run, args.format))
            return 0
        report = load_run(args.run)
    except (UsageError, ValueError) as err:
        return usage(prog, err)
    write_stdout(render(report, args.format, only="params" if args.params else None))
    return 0
