"""`compare.py explain`: where and why backends part ways, stepped side by side in this process from the
run's shared start; exit 1 when a pair differs. --out DIR writes a bundle that replays it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..backends.precision import LOW_DTYPES
from ..comparison.explain import Explainer, render_explained
from ..comparison.html import explain_page
from ..comparison.repro import check_bundle_folder, write_bundle
from ..comparison.saved import OutputError, html_page
from .console import UsageError, failed, usage, warnings_as, write_stdout
from .options import parse_settings
from .plan import Plan, plan_run

HELP = """Step two or more backends side by side from the run's shared start, one batch at a time, and say where
and why each pair parts ways: the first differing step, the stage (forward, loss, gradient, update, optimiser
state), the place and the likely cause. Exit 1 when a pair differs, 0 when all agree to rounding. Takes the
run's options (below).

    compare.py explain --backends numpy,mxnet --dtype float64
    compare.py explain --task classifier --dataset wine --optimizer adam --dtype float64
    compare.py explain --backends numpy,torch --format json
    compare.py explain --backends numpy,mxnet --dtype float64 --out why   (a bundle that replays the step)
"""


def main(argv: list[str], prog: str) -> int:
    try:
        with warnings_as(f"{prog} explain"):
            plan, out = checked(argv, f"{prog} explain")
    except (UsageError, ValueError) as err:
        return usage(f"{prog} explain", err)
    try:  # a backend of one's own that does not declare the replay hooks, or lacks one it declares
        findings = Explainer(plan.first, plan.backends, plan.options).run()
    except NotImplementedError as err:
        return usage(f"{prog} explain", err)
    settings = plan.settings
    header = {"task": plan.first.task, "settings": plan.first.settings, "seeds": plan.seeds,
              "options": {**plan.options, "mode": ",".join(settings.mode), "init": "shared"}}
    write_stdout(render_explained(header, findings, settings.format))
    if out is not None:
        try:
            text = render_explained(header, findings, "table")
            page, failure = None, None
            try:
                page = html_page(lambda: explain_page(header, findings, text))
            except OutputError as err:
                failure = err
            write_bundle(out, plan.first, plan.options, findings, text, page, plan.backends)
            if failure is not None:
                return failed(prog, f"{failure}; the bundle is written without it")
        except (OSError, ValueError) as err:  # a full disk, or the folder filled by someone else meanwhile
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            return failed(prog, f"the bundle could not be written: {reason}; nothing was written")
    return 1 if any(not finding.agree for finding in findings) else 0


def checked(argv: list[str], prog: str) -> tuple[Plan, Path | None]:
    """The run's settings, inline unless told otherwise, checked for explain; its --out is a repro bundle's
    folder, not a run folder."""
    given = parse_settings(argv, prog, HELP.replace("compare.py explain", prog), executor="inline")
    out = check_bundle_folder(given.out) if given.out is not None else None
    if given.precision or given.dtype in LOW_DTYPES:
        option = f"--precision {given.precision}" if given.precision else f"--dtype {given.dtype}"
        raise UsageError(f"{option}: explain replays a step at float32's and float64's tolerances; a reduced-precision "
                         "run is compare.py's, which measures each backend against its float64 shadow")
    if given.executor != "inline":
        raise UsageError("explain steps the backends side by side in this process: --executor inline")
    plan = plan_run(dataclasses.replace(given, out=None), prog)
    settings = plan.settings
    if settings.init != "shared" or len(plan.seeds) > 1:
        raise UsageError("explain compares backends from one shared start: give one --seed and --init shared")
    if len(plan.backends) < 2:
        raise UsageError(f"explain needs two backends or more; received: {', '.join(plan.backends) or 'none'}")
    shown = [option for option, value in (("--plot", settings.plot), ("--curves", settings.curves),
                                          ("--relative", settings.relative)) if value]
    if shown:
        raise UsageError(f"{', '.join(shown)}: explain reports where backends part ways, not curves or plots")
    return plan, out
