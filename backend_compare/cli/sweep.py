"""`compare.py sweep`: every point of a grid of settings × seeds × backends on an executor (a local pool of
workers by default, inline, Dask or Ray), each job cached under --out as it finishes, so the same command
again runs nothing; then a tidy table, a summary with intervals, paired verdicts and figures."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from ..backends import RowName, available_backends, error_line, framework_version, install_hint
from ..backends.precision import LOW_DTYPES
from ..comparison.cache import CACHE, CacheWriter, lookup
from ..comparison.convergence import against_best
from ..comparison.executors import JOB_EXECUTORS, Execute, ExecutorUnavailable, executor
from ..comparison.html import sweep_page
from ..comparison.jobs import Finished, Job, problem_of, thread_settings
from ..comparison.noise import run_noise
from ..comparison.provenance import data_file
from ..comparison.run import OK, BackendResult
from ..comparison.saved import (
    HTML,
    OutputError,
    existing_ancestor,
    figure_bytes,
    html_page,
    prove_writable,
    raise_stop_within,
    write_atomic,
)
from ..comparison.sweep import (
    METRICS,
    code_version,
    job_key,
    pair_tolerance,
    paired,
    parity_ratio,
    split_grid,
    summarise,
    sweepable,
    with_parity,
)
from ..comparison.threads import limits
from ..comparison.verdicts import tolerance_ratio
from ..signals import FAILED, Terminated, how_stopped
from .console import UsageError, failed, say, usage, warnings_as, write_stdout
from .options import Parser, make_parser, parse_value
from .plan import jobs_of, plan_run, select_backends
from .settings import RunSettings
from .sweep_folders import MARKER, described, is_our_sweep, label, render

TABLES = ("jobs.parquet", "jobs.csv", "summary.csv", "paired.csv", "report.html")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A checked sweep: its jobs, what sweep.json says of it, its folder and how it is shown."""

    jobs: list[Job]
    meta: dict[str, Any]
    out: Path
    format: str
    curves_at: dict[str, Any]  # the point whose loss curves are drawn


def _own_parser(prog: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, allow_abbrev=False, description=(
        "Every point of a grid × seeds × backends, each job cached under --out. Every option of a run applies; "
        f"these may be comma lists: {', '.join(sweepable())}."))
    parser.add_argument("--out", metavar="DIR", help="the sweep's folder: its cached jobs, tables and figures")
    parser.add_argument("--rerun", action="store_true", help="run every job again, cached or not")
    parser.add_argument("--executor", choices=(*JOB_EXECUTORS, "process"), default="local",
                        help="local: a pool of --jobs worker processes (default; process is the same); inline: "
                             "one job after another in this process; dask or ray: a cluster (--address), or a "
                             "local one of --jobs workers")
    parser.add_argument("--address", help="the cluster: tcp://HOST:8786 for Dask, HOST:6379 or auto for Ray")
    parser.add_argument("--curves-at", metavar="SETTING=VALUE,...",
                        help="the point whose loss curves are drawn (default: the grid's first)")
    return parser


def main(argv: list[str], prog: str) -> int:
    prog = f"{prog} sweep"
    out: Path | None = None
    try:
        with warnings_as(prog):
            own, rest = _own_parser(prog).parse_known_args(argv)
            sweep = checked(own, rest, argv, prog)
            out = sweep.out
            keys = [job.key for job in sweep.jobs]
            found, broken = ({}, {}) if own.rerun else lookup(sweep.out, keys)  # one read of the cache
            if broken:
                say(prog, f"{len(broken)} cache entr{'y is' if len(broken) == 1 else 'ies are'} not a result of "
                          f"{'its' if len(broken) == 1 else 'their'} job and run{'s' if len(broken) == 1 else ''} "
                          f"again: {'; '.join(f'{key}: {why}' for key, why in list(broken.items())[:3])}"
                          f"{'; …' if len(broken) > 3 else ''}")
            rows = _run(sweep, found, prog)
            return _tables(sweep, rows, prog)
    except (UsageError, ValueError, ExecutorUnavailable) as err:
        return usage(prog, err)
    except (KeyboardInterrupt, Terminated) as stop:  # running or saving: what finished is cached, each file whole
        how, code = how_stopped(stop)
        where = (f"the jobs that finished are cached in {out / CACHE}: the same command goes on from there"
                 if out is not None and out.exists() else "no file was written")
        say(prog, f"{how}; {where}")
        return code
    except OSError as err:  # a full disk, a folder made read-only meanwhile: each file is whole or absent
        return failed(prog, f"the sweep could not be saved: {err.strerror or err}"
                            f"{f' ({err.filename})' if err.filename else ''}; every job that finished before is cached")


def checked(own: argparse.Namespace, rest: list[str], argv: list[str], prog: str) -> Sweep:
    """Every point's settings checked and its jobs made, before anything runs or is written."""
    if own.out is None:
        raise UsageError("sweep needs --out DIR: the folder its cached jobs and tables go to")
    executor = "local" if own.executor == "process" else own.executor
    if own.address is not None and executor not in ("dask", "ray"):
        raise UsageError(f"--address applies only with --executor dask or ray; this sweep runs {executor}")
    base_argv, grid_text = split_grid(rest)
    parser = make_parser(prog)
    base = RunSettings.from_values(vars(parser.parse_args(base_argv)))
    shown = [flag for flag, given in (("--plot", base.plot), ("--curves", base.curves), ("--relative", base.relative))
             if given is not None]
    if shown:
        raise UsageError(f"{', '.join(shown)}: a sweep writes its tables and figures into --out")
    # Each point: setting -> value, read as the run's own option reads it.
    grid = [{_column(option): parse_value(parser, option, text) for option, text in point.items()}
            for point in grid_text] or [{}]
    base = dataclasses.replace(base, executor="inline" if executor == "inline" else "process")
    first = base.with_values(grid[0])
    for point in grid:
        asked = base.with_values(point)
        if asked.precision or asked.dtype in LOW_DTYPES:
            given = f"--precision {asked.precision}" if asked.precision else f"--dtype {asked.dtype}"
            raise UsageError(f"{given}: a sweep compares runs in float32 and float64; a reduced-precision run is "
                             "compare.py's, which measures it against its float64 shadow")
    if first.init != "shared":
        raise UsageError("sweep compares backends from the same start: --init shared")
    names = first.row_names(select_backends(first.backends, prog))
    rows = {name: RowName.parse(name) for name in names}
    _check_backends(rows, executor)
    out = Path(own.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_our_sweep(out))):
        raise UsageError(f"--out {own.out!r} is not a folder of a previous sweep, nor new or empty (a sweep's "
                         "folder holds only what a sweep writes)")
    prove_writable(existing_ancestor(out.parent), "--out", own.out)
    curves_at = _point_asked(own.curves_at, grid)
    code, jobs = code_version(), []
    versions = {name: "" if row.label else framework_version(row.backend)
                for name, row in rows.items()}  # read once: each reading parses the distribution's metadata
    data: dict[str, Any] | None = None
    for index, point in enumerate(grid):  # every point checked before any job runs, one at a time (its data)
        plan = plan_run(base.with_values({**point, "backends": tuple(names)}), prog, runners=False)
        if index == 0:  # the data file is read by then, so it is there; its bytes decide the numbers
            data = data_file(first.data)
        setup = {"epochs": plan.setup["epochs"], "batch_size": plan.setup["batch_size"]}
        # What decides a job's numbers, as checked (not as spelt): the same options in any order are one job.
        numbers = {"task": plan.task, "task_kwargs": plan.task_kwargs, "data": data and data["sha256"],
                   "setup": setup, "options": plan.options,
                   **({"init_from": start["sha256"]} if (start := data_file(first.given("init_from"))) else {})}
        jobs += jobs_of(plan, names, point, functools.partial(_key, numbers, code, versions), code=code,
                        versions=versions, env=limits(first.threads) if first.threads else thread_settings())
    meta = {"format": "backend-compare sweep", "settings": ["task", *grid[0]],
            "backends": names, "reference": names[0], "dtype": first.dtype, "optimizer": first.optimizer,
            "command": argv,
            "executor": executor, "address": own.address, "jobs": first.jobs, "quiet": first.quiet}
    return Sweep(jobs, meta, out, first.format, curves_at)


def _key(numbers: dict[str, Any], code: str, versions: dict[str, str], name: str, seed: int) -> str:
    return job_key(numbers, RowName.parse(name), seed, code, versions[name])


def _column(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _check_backends(rows: dict[str, RowName], executor: str) -> None:
    """On this machine, a backend that is not installed is a usage error now; on a cluster, its nodes decide."""
    labelled = [name for name, row in rows.items() if row.label]
    if labelled and executor != "local":
        raise UsageError(f"--backends {','.join(labelled)}: another environment's rows run on --executor local")
    if executor in ("local", "inline"):
        installed = available_backends()
        for row in rows.values():
            if not row.label and row.backend not in installed:
                raise UsageError(f"backend {row.backend!r} is unavailable: {install_hint(row.backend)}")


def _point_asked(given: str | None, grid: list[dict[str, Any]]) -> dict[str, Any]:
    """The grid point --curves-at names (SETTING=VALUE,...), as settings; the first point when not given."""
    if given is None:
        return grid[0]
    asked = {}
    for part in given.split(","):
        name, _, value = part.partition("=")
        column = name.strip().replace("-", "_")
        if column not in grid[0]:
            raise UsageError(f"--curves-at {given!r}: {name.strip()!r} is not a setting this sweep varies "
                             f"({', '.join(grid[0]) or 'none'})")
        try:
            asked[column] = sweepable()["--" + column.replace("_", "-")](value.strip())
        except (ValueError, argparse.ArgumentTypeError):
            raise UsageError(f"--curves-at {given!r}: {value.strip()!r} is not a value of {name.strip()}") from None
    matches = [point for point in grid if all(value == asked.get(column, value) for column, value in point.items())]
    if not matches:
        raise UsageError(f"--curves-at {given!r}: no point of the grid has these settings")
    return matches[0]
def _run(sweep: Sweep, done: dict[str, dict[str, Any]], prog: str) -> list[dict[str, Any]]:
    """Run the jobs not in `done` (caching each that finished as it ends); every job's row, in grid order."""
    jobs, meta, out = sweep.jobs, sweep.meta, sweep.out
    missing = [job for job in jobs if job.key not in done]
    with executor(meta["executor"] if missing else "inline", parallel=meta["jobs"], address=meta["address"]) as run:
        out.mkdir(parents=True, exist_ok=True)
        if not missing:  # what the tables and figures on disk were made of: they may be current already
            meta.update({key: value for key, value in described(out).items() if key in ("tables_of", "figures")})
        write_atomic(out / MARKER, json.dumps(meta, indent=1).encode())
        _run_on(run, jobs, missing, done, meta, out, prog)
    return [done[job.key] for job in jobs]


def _run_on(run: Execute, jobs: list[Job], missing: list[Job], done: dict[str, dict[str, Any]], meta: dict[str, Any],
            out: Path, prog: str) -> None:
    quiet = meta["quiet"]
    if missing and not quiet:
        where = meta["executor"] + (f" at {meta['address']}" if meta["address"] else "")
        say(prog, f"{len(jobs)} jobs, {len(jobs) - len(missing)} cached, {len(missing)} to run on {where}")
    progress = tqdm(total=len(missing), unit="job", file=sys.stderr, delay=2, leave=False,
                    disable=True if quiet else None)  # None: on a terminal only

    with progress, CacheWriter(out) as cache:  # what finished is committed however the block ends
        def finished(job: Finished) -> None:
            row = job.row
            if row["status"] == OK or row["status"].startswith("diverged"):  # the setting's own result, every time
                cache.add(row)  # a failed, timed-out or lost job is not cached: it runs again next time
            done[row["key"]] = row
            progress.update(1)

        run(missing, finished, lambda job, epochs: None)


def _tables(sweep: Sweep, rows: list[dict[str, Any]], prog: str) -> int:
    """The tidy table (Parquet and CSV), the summary, the paired differences and the figures; printed."""
    out, meta, curves_at = sweep.out, sweep.meta, sweep.curves_at
    settings, reference = meta["settings"], meta["reference"]
    first_seed = min(row["seed"] for row in rows)
    curves = {row["backend"]: row["curve"] for row in rows if row.get("curve") and row["status"] == OK
              and row["seed"] == first_seed and all(row.get(name) == value for name, value in curves_at.items())}
    jobs = pd.DataFrame(against_best(with_parity(rows, settings, reference, meta["dtype"], meta["optimizer"]),
                                     settings))
    metrics = [metric for metric in METRICS if metric in jobs]  # val_accuracy: classification only
    jobs[metrics] = jobs[metrics].apply(pd.to_numeric, errors="coerce")  # a cached null is NaN
    jobs["noise_ratio"] = _noise_ratios(jobs, sweep.jobs, meta)
    summary, differences = summarise(jobs, settings), paired(jobs, settings, reference, meta["dtype"])
    made_of = hashlib.sha256(json.dumps([[(row["key"], row["status"]) for row in rows], settings, reference,
                                         curves_at], default=str).encode()).hexdigest()[:16]
    if meta.get("tables_of") == made_of and all((out / name).is_file() for name in [*TABLES, *meta["figures"]]):
        drawn = meta["figures"]  # nothing changed since they were written: the same command again is quick
    else:
        buffer = io.BytesIO()
        jobs.to_parquet(buffer, index=False)
        write_atomic(out / "jobs.parquet", buffer.getvalue())
        write_atomic(out / "jobs.csv", jobs.to_csv(index=False).encode())
        write_atomic(out / "summary.csv", summary.to_csv(index=False).encode())
        write_atomic(out / "paired.csv", differences.to_csv(index=False).encode())
        drawn = _figures(out, jobs, summary, meta, curves, curves_at, prog)
        try:
            write_atomic(out / HTML, html_page(lambda: sweep_page(meta, jobs, summary, differences, curves,
                                                                  label(curves_at))).encode())
        except OutputError as err:
            failed(prog, str(err))
            drawn = []  # not current: made again next time, and the exit code says so
        write_atomic(out / MARKER, json.dumps({**meta, "tables_of": made_of if drawn else None, "figures": drawn},
                                              indent=1).encode())
    write_stdout(f"{len(jobs)} jobs in {out}: {CACHE} (the cache), {', '.join(TABLES)}, {', '.join(drawn)}\n\n"
                 + render(summary, differences, meta, sweep.format))
    unfinished = jobs[jobs["status"] != OK]
    if len(unfinished):
        say(prog, f"{len(unfinished)} of {len(jobs)} jobs did not finish: "
            + "; ".join(f"{row.backend} seed {row.seed} {row.status}" for row in unfinished.head(5).itertuples())
            + (" ..." if len(unfinished) > 5 else ""))
    return 0 if not len(unfinished) and drawn else FAILED


def _noise_ratios(jobs: pd.DataFrame, made: list[Job], meta: dict[str, Any]) -> pd.Series:
    """For each job beyond its parity tolerance, the rounding noise of its point and seed in multiples of the
    same tolerance, measured as a run's verdict measures it (numpy against its float64 shadow or twin, the
    worse of parameters and step losses); NaN elsewhere, and where the data is too large to shadow. Trained
    here, once per point and seed, only where some backend is beyond its tolerance."""
    by_key = {job.key: job for job in made}
    noise: dict[Any, float] = {}
    beyond = jobs[(parity_ratio(jobs, meta["dtype"]) > 1) & (jobs["status"] == OK)]
    measured: dict[tuple[Any, ...], tuple[BackendResult, BackendResult] | None] = {}
    for index, row in beyond.iterrows():
        job = by_key.get(str(row["key"]))
        if job is None:
            continue
        point = (*(str(row.get(name)) for name in meta["settings"]), row["seed"])
        if point not in measured:
            runs = run_noise(problem_of(job)[1], job.options)
            found = runs() if runs is not None else None
            measured[point] = found if found is not None and all(run.status == OK for run in found) else None
        if (found := measured[point]) is not None:
            noise[index] = tolerance_ratio(*found, pair_tolerance(dict(row), meta["reference"], meta["dtype"],
                                                                  meta["optimizer"]))
    return pd.Series([noise.get(index, math.nan) for index in jobs.index], index=jobs.index, dtype=float)


def _figures(out: Path, jobs: pd.DataFrame, summary: pd.DataFrame, meta: dict[str, Any],
             curves: dict[str, dict[str, list[float]]], curves_at: dict[str, Any], prog: str) -> list[str]:
    """Each figure written whole; one that cannot be drawn is a line on stderr (the tables are written)."""
    from ..comparison import sweep_plots

    settings, reference = meta["settings"], meta["reference"]
    title = f"{jobs['task'].iloc[0]} · {meta['dtype']}"
    point = label(curves_at)
    finished = pd.to_numeric(jobs.loc[jobs["status"] == OK, "final_train_loss"], errors="coerce")
    if not (finished > 0).any():  # timed out, crashed, diverged: a figure of nothing is not drawn
        say(prog, "no job finished with a loss to draw: no figures were drawn")
        return []
    try:
        with warnings.catch_warnings():  # one grid point: matplotlib widens the axes' single value, as it should,
            warnings.filterwarnings("ignore", message="Attempting to set identical", category=UserWarning)
            # and reads one bar's error as a scalar the way NumPy 1.25 deprecates (matplotlib's, not ours)
            warnings.filterwarnings("ignore", message="Conversion of an array with ndim > 0",
                                    category=DeprecationWarning)
            name, loss = sweep_plots.loss_figure(summary, settings, title)
            figures = {name: loss, "step_time.png": sweep_plots.time_figure(summary, settings, title)}
            if jobs["backend"].nunique() > 1:  # parity is to the reference: one backend has nothing to show
                figures["parity.png"] = sweep_plots.parity_figure(jobs, settings, reference, title,
                                                                      meta["dtype"])
            if curves:
                figures["curves.png"] = sweep_plots.curves_figure(curves, f"{point}, seed {jobs['seed'].min()}")
            drawn = {name: figure_bytes(figure, "png") for name, figure in figures.items()}
    except Exception as err:
        raise_stop_within(err)
        failed(prog, f"the figures could not be drawn: {error_line(err)}")
        return []
    for name, data in drawn.items():
        write_atomic(out / name, data)
    return list(drawn)
