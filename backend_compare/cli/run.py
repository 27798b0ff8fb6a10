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
from ..comparison.executors import executor
from ..comparison.fits import identifiable
from ..comparison.html import run_page
from ..comparison.jobs import Finished, Job, adopt, problem_of, remember_problem
from ..comparison.noise import MOST_VALUES, data_values, run_noise
from ..comparison.numerics import numerics_label, numerics_tables, run_numerics, shadow_noise, shadow_result
from ..comparison.provenance import provenance, started_at
from ..comparison.report import build_report, records, render, seed_tables
from ..comparison.run import OK, BackendResult, reference_result, stopped_result
from ..comparison.saved import (
    OutputError,
    figure_bytes,
    html_page,
    plot_format,
    raise_stop_within,
    save_run,
    write_atomic,
)
from ..comparison.seeds import by_seed, combine_seeds
from ..comparison.verdicts import summary as verdict_summary
from ..comparison.verdicts import worst_pairs
from ..environment import broken_package
from ..signals import FAILED, Terminated, how_stopped
from ..tasks import Problem
from .console import UsageError, failed, on_disk, say, usage, write_stdout
from .plan import Plan, jobs_of, memory_error, prepare


def main(argv: list[str], prog: str) -> int:
    try:
        plan = prepare(argv, prog)
    except (UsageError, ValueError) as err:
        return usage(prog, err)
    except MemoryError as err:  # building a model (the data's own are caught where the task is known)
        return usage(prog, f"the run does not fit in this machine's memory ({memory_error(err)}); "
                           "use a smaller model (--hidden) or less data")
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
    optimum: str | None = None  # the reference row's name, when the model has an exact optimum (or a baseline)
    baseline = False  # whether that row is a baseline of another model (an AR model's), not this model's optimum
    progress = tqdm(total=len(plan.seeds) * len(plan.names) * len(plan.first.epoch_batches), unit="epoch",
                    file=sys.stderr, delay=2, leave=False, disable=True if settings.quiet else None)  # None: tty only

    def finish_seed(seed: int, problem: Problem, results: list[BackendResult], measure: bool) -> None:
        nonlocal optimum, baseline  # measure: the noise of a pair beyond tolerance (not once a signal stopped it)
        reference = reference_result(problem, plan.options)
        optimum = reference.backend if reference else None
        baseline = reference is not None and not reference.params
        low = run_numerics(plan.options).low  # then its noise is the closest backend's distance from the shadow
        # measure: no training once a signal stopped the run; nor a float64 copy of data larger than the noise takes
        shadow = trained_shadow(problem) if low and settings.init == "shared" and measure else None
        noise = None if not measure else run_noise(problem, plan.options) if not low else (
            shadow_noise(results, shadow) if shadow is not None else None)
        tables = seed_tables(problem, results + ([reference] if reference else []), bool(settings.relative),
                             settings.init, numerics_label(plan.options), plan.options["optimizer"], noise)
        per_seed.append({**tables, **numerics_tables(problem, results, shadow)})
        seeds_run.append(seed)

    def trained_shadow(problem: Problem) -> BackendResult | None:
        """The float64 shadow of a reduced-precision seed; None (said on stderr) where it cannot be had."""
        values = data_values(problem)
        if values > MOST_VALUES:  # as for the float32 noise: a float64 copy the memory estimate did not count
            say(prog, f"no float64 shadow: its copy of the data's {values} values would take {8 * values / 2**20:.0f} "
                      "MB; the pairs are held to their tolerance alone")
            return None
        try:
            return shadow_result(problem, plan.options)
        except (ValueError, FloatingPointError, MemoryError) as err:  # the rows are there: say why it is missing
            say(prog, f"no float64 shadow for seed {problem.settings.get('seed', '')}: {error_line(err)}")
            return None

    def on_progress(job: Job, epochs: int) -> None:
        progress.set_description(f"seed {job.seed} {job.backend}", refresh=False)
        progress.update(epochs)

    with progress:
        stop = run_seeds(plan, finish_seed, on_progress)
    stopped_by = how_stopped(stop) if stop is not None else None

    header: dict[str, Any] = {
        "task": plan.first.task, "settings": plan.first.settings, "seeds": seeds_run, "reference": optimum,
        **({"baseline": True} if baseline else {}),
        "options": {**plan.options, "mode": ",".join(settings.mode), "init": settings.init,
                    "curves": settings.curves, "relative": bool(settings.relative),
                    "parallel": min(settings.jobs, len(plan.workers)) if plan.workers else 1,
                    **({"threads": plan.threads} if plan.threads else {})}}
    elsewhere = {worker.name: " · ".join(f"{k} {v}" for k, v in worker.versions.items())
                 for worker in plan.workers if plan.rows[worker.name].label}
    if elsewhere:  # rows from other environments: what each of them runs
        header["environments"] = elsewhere
    if plan.out is not None:
        header["provenance"] = provenance(prog, plan.argv, started, environments(plan), settings.data,
                                          settings.given("init_from"))
    if settings.init == "shared":  # each pair's worst seed against its tolerance
        header["parity_verdict"] = verdict_summary(worst_pairs(records(tables["parity"]) for tables in per_seed))
    if not identifiable(plan.first):  # thousands of values nobody compares with a truth: saved, shown on request
        header["on_request"] = ["params"]
    report = build_report(header, combine_seeds(per_seed))
    if len(per_seed) > 1:  # what the means and standard deviations are made of
        report["by_seed"] = {key: records(table) for key, table in by_seed(per_seed, seeds_run).items()}
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
    if settings.check and report["parity_verdict"]["beyond"]:  # the gate a CI job asks for
        say(prog, f"--check failed: {report['parity_verdict']['line']}")
        return FAILED
    return 0


def run_seeds(plan: Plan, finish_seed: Callable[[int, Problem, list[BackendResult], bool], None],
              on_progress: Callable[[Job, int], object]) -> BaseException | None:
    """Every seed × row of a checked plan, as jobs on its executor (the one a sweep uses), the workers closed
    after; each seed's tables made in seed order as soon as its rows are in. A signal stops the run: the rows
    it cut short say so (a later seed none of whose rows finished is left out), and the signal is returned."""
    names, seeds = plan.names, plan.seeds
    jobs = jobs_of(plan, names, {}, lambda name, seed: f"{seed}/{name}", env=plan.env)
    remember_problem(jobs[0], plan.first)  # made while checking the options
    for worker in plan.workers:  # started while checking: the run's first jobs take them
        adopt(next(job for job in jobs if job.backend == worker.name), worker)
    results: dict[int, dict[str, BackendResult]] = {seed: {} for seed in seeds}
    finished_seeds = 0

    def finish(rows: dict[str, BackendResult], seed: int, measure: bool = True) -> None:
        nonlocal finished_seeds  # seeds finish in order: this one is seeds[finished_seeds], its jobs start there
        finish_seed(seed, problem_of(jobs[finished_seeds * len(names)])[1], [rows[name] for name in names], measure)
        finished_seeds += 1

    def on_done(done: Finished) -> None:
        results[done.job.seed][done.job.backend] = done.result
        while finished_seeds < len(seeds) and len(results[seeds[finished_seeds]]) == len(names):
            finish(results[seeds[finished_seeds]], seeds[finished_seeds])

    try:
        with executor(plan.settings.executor, parallel=plan.settings.jobs, address=None) as execute:
            execute(jobs, on_done, on_progress)
    except BaseException as stop:  # Ctrl-C or SIGTERM: every worker is stopped by now
        how = how_stopped(stop)[0]
        for position, seed in enumerate(seeds[finished_seeds:]):  # the seed it cut short, whole or not;
            if position and not results[seed]:  # then any a worker had begun
                break
            finish({name: results[seed].get(name) or stopped_result(name, how) for name in names}, seed,
                   measure=False)  # no training once stopped: the noise of a long run takes as long again
        return stop
    finally:
        for worker in plan.workers:  # those the executor never took (it stopped before)
            worker.kill()
    return None


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
        raise OutputError(f"the plot could not be drawn: {broken_package(err) or error_line(err)}") from err
