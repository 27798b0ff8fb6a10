"""`compare.py [run]`: train every backend for every seed, print the report, then save what was asked for."""

from __future__ import annotations

import platform
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..backends import error_line, framework_version, package_version, registration
from ..comparison.executors import run_in_workers, run_inline
from ..comparison.html import run_page
from ..comparison.provenance import provenance, started_at
from ..comparison.report import build_report, combine_seeds, render, seed_tables
from ..comparison.run import OK, BackendResult, build_backends, reference_result
from ..comparison.saved import (
    OutputError,
    figure_bytes,
    html_page,
    plot_format,
    raise_stop_within,
    save_run,
    write_atomic,
)
from ..signals import FAILED, Terminated, how_stopped
from ..tasks import Problem
from .console import UsageError, failed, on_disk, say, usage, write_stdout
from .plan import Plan, prepare


def main(argv: list[str], prog: str) -> int:
    try:
        plan = prepare(argv, prog)
    except (UsageError, ValueError) as err:
        return usage(prog, err)
    except MemoryError as err:  # what the estimate did not foresee: sizes too large to build at all
        return usage(prog, f"the run does not fit in this machine's memory ({err or 'MemoryError'}); "
                           "use smaller --n-samples, --epochs, --hidden or --inputs")
    if not plan.names:
        return failed(prog, "no backend could run")
    return execute(plan)


def execute(plan: Plan) -> int:
    """Train every backend for every seed, print the report, then save what was asked for. Exit 0; 1 if a
    backend diverged or failed or a file could not be written; 130 on Ctrl-C and 143 on SIGTERM, after
    printing what finished and writing no file."""
    settings, prog = plan.settings, plan.prog
    started = started_at()
    per_seed, seeds_run = [], []
    optimum: str | None = None  # the reference row's name, when the model has an exact optimum
    progress = tqdm(total=len(plan.seeds) * len(plan.names) * len(plan.first.epoch_batches), unit="epoch",
                    file=sys.stderr, delay=2, leave=False, disable=True if settings.quiet else None)  # None: tty only

    def finish_seed(seed: int, problem: Problem, results: list[BackendResult]) -> None:
        nonlocal optimum
        reference = reference_result(problem, plan.options)
        optimum = reference.backend if reference else None
        per_seed.append(seed_tables(problem, results + ([reference] if reference else []), bool(settings.relative),
                                    settings.init))
        seeds_run.append(seed)

    with progress:
        stop = run_seeds(plan, finish_seed, progress.update,
                         lambda seed, name: progress.set_description(f"seed {seed} {name}"))
    stopped_by = how_stopped(stop) if stop is not None else None

    header = {"task": plan.first.task, "settings": plan.first.settings, "seeds": seeds_run, "reference": optimum,
              "options": {**plan.options, "mode": ",".join(settings.mode), "init": settings.init,
                          "curves": settings.curves, "relative": bool(settings.relative),
                          "parallel": min(settings.jobs, len(plan.workers)) if plan.workers else 1}}
    elsewhere = {worker.name: " · ".join(f"{k} {v}" for k, v in worker.versions.items())
                 for worker in plan.workers if plan.rows[worker.name].label}
    if elsewhere:  # rows from other environments: what each of them runs
        header["environments"] = elsewhere
    if plan.out is not None:
        header["provenance"] = provenance(prog, plan.argv, started, environments(plan), settings.data)
    report = build_report(header, combine_seeds(per_seed))
    write_stdout(render(report, settings.format))
    if stopped_by:
        say(prog, f"{stopped_by[0]}: showing the runs that finished; no file was written")
        return stopped_by[1]
    written: list[str] = []
    try:
        save_outputs(plan, report, written)
    except (KeyboardInterrupt, Terminated) as stop:  # the tables are out; say exactly what is on disk
        how, code = how_stopped(stop)
        say(prog, f"{how} while saving; {on_disk(written)}")
        return code
    except (OSError, ValueError) as err:  # disk full, a folder in the way: the tables are out already
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return failed(prog, f"the results could not be saved: {reason}; {on_disk(written)}")
    stopped = [f"{row['backend']} {row['status']}" for row in report["summary"] if row["status"] != OK]
    if stopped:
        say(prog, f"{len(stopped)} of {len(report['summary'])} backends did not finish: " + "; ".join(stopped))
        return FAILED
    return 0


def run_seeds(plan: Plan, finish_seed: Callable[[int, Problem, list[BackendResult]], None],
              on_progress: Callable[[int], object], on_start: Callable[[int, str], object]) -> BaseException | None:
    """Every seed of a checked plan on its executor, the workers closed after; the signal that stopped it."""
    settings = plan.settings

    def problem(seed: int) -> Problem:  # the first seed's was made while checking the options
        return plan.first if seed == plan.seeds[0] else plan.problems(seed)

    def describe(stop: BaseException) -> str:
        return how_stopped(stop)[0]

    if plan.workers:
        try:
            return run_in_workers(plan.workers, problem, plan.seeds, job={
                "options": plan.options, "init": settings.init, "record": settings.records}, jobs=settings.jobs,
                timeout=settings.timeout, on_progress=on_progress, describe=describe, finish_seed=finish_seed)
        finally:
            for worker in plan.workers:
                worker.close()
    return run_inline(
        lambda seed, problem: plan.backends if seed == plan.seeds[0] else build_backends(
            problem, plan.names, plan.options),
        problem, plan.seeds, init=settings.init, record=settings.records, on_epoch=lambda: on_progress(1),
        on_start=on_start, describe=describe, finish_seed=finish_seed)


def environments(plan: Plan) -> dict[str, dict[str, str]]:
    """Per row: its framework's version, Python's and NumPy's, where it ran."""
    here = {"python": platform.python_version(), "numpy": package_version("numpy")}

    def framework(backend: str, version: str) -> str:
        return f"{registration(backend).framework or 'numpy'} {version}"

    found = {name: {**here, "framework": framework(plan.rows[name].backend, framework_version(plan.rows[name].backend))}
             for name in plan.backends}
    for worker in plan.workers:
        found[worker.name] = {"python": worker.versions.get("python", "?"), "numpy": worker.versions.get("numpy", "?"),
                              "framework": framework(worker.backend, worker.versions.get(worker.backend, "?")),
                              **({"interpreter": worker.python} if plan.rows[worker.name].label else {})}
    return found


def save_outputs(plan: Plan, report: dict[str, Any], written: list[str]) -> None:
    """The plot file and the run folder, each whole or not at all; `written` lists those that are done.
    A plot or page that cannot be made does not stop the run folder: it is saved without them, then the
    error is raised."""
    plot = plan.settings.plot
    if not (plot or plan.out):
        return
    formats = [plot_format(plot)] if plot else []
    rendered: dict[str, bytes] = {}  # format -> bytes: the run folder's PNG and a --plot PNG are drawn once
    failures = []
    try:
        rendered = drawn(report, formats + ["png"] * (plan.out is not None))
    except OutputError as err:
        failures.append(err)
    if plot and formats[0] in rendered:
        write_atomic(Path(plot), rendered[formats[0]])
        written.append(plot)
    if plan.out is not None:
        page = None
        try:
            page = html_page(lambda: run_page(report))
        except OutputError as err:
            failures.append(err)
        save_run(plan.out, report, rendered.get("png"), page)
        written.append(str(plan.out))
    if failures:
        raise failures[0]


def drawn(report: dict[str, Any], formats: list[str]) -> dict[str, bytes]:
    """The loss figure in each format; matplotlib failing in any way (a broken install, a back-end, a
    font) is one line."""
    if not report.get("curves"):
        warnings.warn("no backend finished an epoch: there is no loss curve to plot", stacklevel=1)
        return {}
    try:
        from ..comparison.plot import loss_figure

        figure = loss_figure(report)
        return {fmt: figure_bytes(figure, fmt) for fmt in dict.fromkeys(formats)}
    except Exception as err:
        raise_stop_within(err)
        raise OutputError(f"the plot could not be drawn: {error_line(err)}") from err
