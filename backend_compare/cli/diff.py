"""`compare.py diff DIR_A DIR_B`: what changed between two saved runs (or two sweeps) of the same settings,
per backend and metric; exit 1 when something got worse."""

from __future__ import annotations

import argparse

from ..comparison.saved import diff_runs, differing_settings, load_run
from ..signals import FAILED
from .console import UsageError, say, usage, write_stdout
from .options import Parser
from .sweep_folders import diff_sweep_folders, is_sweep


def main(argv: list[str], prog: str) -> int:
    parser = Parser(prog=f"{prog} diff", description="What changed between two saved runs of the same settings, per "
                                                     "backend and metric; exit 1 when something got worse.")
    parser.add_argument("run_a", metavar="DIR_A")
    parser.add_argument("run_b", metavar="DIR_B")
    parser.add_argument("--threshold", type=float, default=0.1, help="relative rise that counts as worse (0.1)")
    parser.add_argument("--atol", type=float, default=1e-12, help="absolute rise below which nothing is worse")
    parser.add_argument("--force", action="store_true", help="compare runs whose settings differ")
    try:
        args = parser.parse_args(argv)
        if not args.threshold >= 0 or not args.atol >= 0:
            raise UsageError(f"--threshold and --atol must be >= 0; received: {args.threshold}, {args.atol}")
        sweeps = [is_sweep(args.run_a), is_sweep(args.run_b)]
        if any(sweeps):
            if not all(sweeps):
                raise UsageError(f"{args.run_a if sweeps[0] else args.run_b} is a sweep and the other is a run: diff "
                                 "compares two runs or two sweeps")
            return _diff_sweeps(args, prog)
        old, new = load_run(args.run_a), load_run(args.run_b)
        differing = differing_settings(old, new)
        if differing and not args.force:
            raise UsageError(f"the runs differ in {len(differing)} setting(s), so their numbers are not comparable: "
                             + "; ".join(differing) + " (--force compares them anyway)")
        table = diff_runs(old, new, args.threshold, args.atol)
    except (UsageError, ValueError) as err:
        return usage(prog, err)
    shown = table.astype(object).where(table.notna(), "-")
    for column in ("A", "B"):
        shown[column] = [value if value == "-" else f"{value:.4g}" for value in shown[column]]
    shown["change"] = [value if value == "-" else f"{value:+.1%}" for value in shown["change"]]
    print(f"A = {args.run_a}, B = {args.run_b}" + (" (settings differ: --force)" if differing else ""))
    print(shown.to_string(index=False))
    worse = table[table["verdict"] == "WORSE"]
    if len(worse):
        say(f"{prog} diff", f"{len(worse)} regression(s): "
            + ", ".join(f"{row.backend} {row.metric}" for row in worse.itertuples()))
        return FAILED
    return 0


def _diff_sweeps(args: argparse.Namespace, prog: str) -> int:
    """Two sweeps, point by point and seed by seed; exit 1 when a change is a regression outside the noise."""
    table, heading = diff_sweep_folders(args.run_a, args.run_b, args.threshold, args.atol)
    shown = table.astype(object).where(table.notna(), "-")
    for column in ("A", "B", "change", "ci_low", "ci_high"):
        shown[column] = [value if value == "-" else f"{value:.4g}" for value in shown[column]]
    write_stdout(f"{heading}\n{shown.to_string(index=False)}\n")
    worse = table[table["verdict"] == "WORSE"]
    if len(worse):
        say(f"{prog} diff", f"{len(worse)} regression(s) outside the noise: "
            + ", ".join(f"{row.backend} {row.metric}" for row in worse.head(10).itertuples()))
        return FAILED
    return 0
