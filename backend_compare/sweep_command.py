"""`compare.py sweep`: every point of a grid of settings × seeds × backends on an executor (a local pool of
workers by default, inline, Dask or Ray), each job cached under --out as it finishes, so the same command
again runs nothing; then a tidy table, a summary with intervals, paired verdicts and figures. `show` and
`diff` of sweep folders are here too."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from . import cli
from .backends import RowName, available_backends, error_line, framework_version, install_hint
from .comparison.html import sweep_page
from .comparison.job_executors import JOB_EXECUTORS, ExecutorUnavailable, executor
from .comparison.jobs import Job, thread_settings
from .comparison.provenance import data_file
from .comparison.run import OK
from .comparison.saved import (
    HTML,
    OutputError,
    existing_ancestor,
    figure_bytes,
    html_page,
    prove_writable,
    raise_stop_within,
    write_atomic,
)
from .comparison.sweep import (
    METRICS,
    SWEEPABLE,
    cached,
    code_version,
    diff_sweeps,
    job_key,
    paired,
    render_sweep,
    split_grid,
    store,
    summarise,
    with_parity,
)
from .entry import Terminated, how_stopped

MARKER = "sweep.json"  # what makes a folder a previous sweep's, and what it was
NOT_FOR_SWEEPS = ("--plot", "--curves", "--relative")
TABLES = ("jobs.parquet", "jobs.csv", "summary.csv", "paired.csv", "report.html")


def _own_parser() -> argparse.ArgumentParser:
    parser = cli._Parser(prog=cli.PROG, allow_abbrev=False, description=(
        "Every point of a grid × seeds × backends, each job cached under --out. Every option of a run applies; "
        f"these may be comma lists: {', '.join(SWEEPABLE)}."))
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


def sweep_main(argv: list[str]) -> int:
    run_prog, cli.PROG = cli.PROG, f"{cli.PROG} sweep"
    out: Path | None = None
    try:
        own, rest = _own_parser().parse_known_args(argv)
        jobs, meta, out, fmt, curves_at = _checked(own, rest, argv)
        rows = _run(jobs, {} if own.rerun else cached(out, [job.key for job in jobs]), meta, out)
        return _tables(out, meta, rows, curves_at, fmt)
    except (cli.UsageError, ValueError, ExecutorUnavailable) as err:
        return cli._usage(err)
    except (KeyboardInterrupt, Terminated) as stop:  # running or saving: what finished is cached, each file whole
        how, code = how_stopped(stop)
        where = (f"the jobs that finished are cached in {out / 'jobs'}: the same command goes on from there"
                 if out is not None and out.exists() else "no file was written")
        print(f"{cli.PROG}: {how}; {where}", file=sys.stderr)
        return code
    except OSError as err:  # a full disk, a folder made read-only meanwhile: each file is whole or absent
        print(f"{cli.PROG}: error: the sweep could not be saved: {err.strerror or err}"
              f"{f' ({err.filename})' if err.filename else ''}; every job that finished before is cached",
              file=sys.stderr)
        return 1
    finally:
        cli.PROG = run_prog


def _checked(own: argparse.Namespace, rest: list[str], argv: list[str]
             ) -> tuple[list[Job], dict[str, Any], Path, str, dict[str, Any]]:
    """Every point's options checked and its jobs made, before anything runs or is written."""
    if own.out is None:
        raise cli.UsageError("sweep needs --out DIR: the folder its cached jobs and tables go to")
    executor = "local" if own.executor == "process" else own.executor
    if own.address is not None and executor not in ("dask", "ray"):
        raise cli.UsageError(f"--address applies only with --executor dask or ray; this sweep runs {executor}")
    base, grid = split_grid(rest)
    grid = grid or [{}]
    shown = [option for option in NOT_FOR_SWEEPS if any(item.split("=")[0] == option for item in base)]
    if shown:
        raise cli.UsageError(f"{', '.join(shown)}: a sweep writes its tables and figures into --out")
    point_argv = [*base, "--executor", "inline" if executor == "inline" else "process"]
    args = cli.make_parser().parse_args(point_argv + _parts(grid[0]))
    if args.init != "shared":
        raise cli.UsageError("sweep compares backends from the same start: --init shared")
    names = cli.row_names(args, cli._select_backends(args.backends))
    _check_backends(names, executor)
    out = Path(own.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise cli.UsageError(f"--out {own.out!r} is not a folder of a previous sweep, nor new or empty")
    prove_writable(existing_ancestor(out.parent), "--out", own.out)
    curves_at = _point_asked(own.curves_at, grid)
    code, jobs = code_version(), []
    versions = {name: "" if RowName.parse(name).label else framework_version(RowName.parse(name).backend)
                for name in names}  # read once: each reading parses the distribution's metadata
    with_names = [*cli._dropped(point_argv, ("--backends",)), "--backends", ",".join(names)]
    data: dict[str, Any] | None = None
    for index, point in enumerate(grid):  # every point checked before any job runs, one at a time (its data)
        plan = cli.prepare(with_names + _parts(point), runners=False)
        if index == 0:  # the data file is read by then, so it is there; its bytes decide the numbers
            data = data_file(args.data)
        settings = {"task": plan.task, **{_column(option): SWEEPABLE[option](value) for option, value in point.items()}}
        setup = {"epochs": plan.setup["epochs"], "batch_size": plan.setup["batch_size"]}
        # What decides a job's numbers, as checked (not as spelt): the same options in any order are one job.
        numbers = {"task": plan.task, "task_kwargs": plan.task_kwargs, "data": data and data["sha256"],
                   "setup": setup, "options": plan.options}
        for seed in plan.seeds:
            for name in names:
                row = RowName.parse(name)
                jobs.append(Job(
                    key=job_key(numbers, name, seed, code, versions[name]), settings=settings, seed=seed,
                    backend=name, task=plan.task, task_kwargs=plan.task_kwargs, setup=setup, options=plan.options,
                    python=plan.pythons.get(name) if row.label else None, timeout=plan.args.timeout,
                    env=thread_settings(), code=code, framework=versions[name]))
    meta = {"format": "backend-compare sweep", "settings": ["task", *(_column(option) for option in grid[0])],
            "backends": names, "reference": names[0], "dtype": args.dtype, "command": argv,
            "executor": executor, "address": own.address, "jobs": args.jobs, "quiet": bool(args.quiet)}
    return jobs, meta, out, args.format, curves_at


def _parts(point: dict[str, str]) -> list[str]:
    return [part for option, value in point.items() for part in (option, value)]


def _column(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def _check_backends(names: list[str], executor: str) -> None:
    """On this machine, a backend that is not installed is a usage error now; on a cluster, its nodes decide."""
    labelled = [name for name in names if RowName.parse(name).label]
    if labelled and executor != "local":
        raise cli.UsageError(f"--backends {','.join(labelled)}: another environment's rows run on --executor local")
    if executor in ("local", "inline"):
        installed = available_backends()
        for name in names:
            row = RowName.parse(name)
            if not row.label and row.backend not in installed:
                raise cli.UsageError(f"backend {row.backend!r} is unavailable: {install_hint(row.backend)}")


def _point_asked(given: str | None, grid: list[dict[str, str]]) -> dict[str, Any]:
    """The grid point --curves-at names (SETTING=VALUE,...), as settings; the first point when not given."""
    if given is None:
        return {_column(option): SWEEPABLE[option](value) for option, value in grid[0].items()}
    asked = {}
    for part in given.split(","):
        name, _, value = part.partition("=")
        option = "--" + name.strip().replace("_", "-")
        if option not in grid[0]:
            raise cli.UsageError(f"--curves-at {given!r}: {name.strip()!r} is not a setting this sweep varies "
                                 f"({', '.join(_column(o) for o in grid[0]) or 'none'})")
        try:
            asked[_column(option)] = SWEEPABLE[option](value.strip())
        except ValueError:
            raise cli.UsageError(f"--curves-at {given!r}: {value.strip()!r} is not a value of {name.strip()}") from None
    matches = [point for point in grid if all(SWEEPABLE[o](v) == asked.get(_column(o), SWEEPABLE[o](v))
                                               for o, v in point.items())]
    if not matches:
        raise cli.UsageError(f"--curves-at {given!r}: no point of the grid has these settings")
    return {_column(option): SWEEPABLE[option](value) for option, value in matches[0].items()}


def _run(jobs: list[Job], done: dict[str, dict[str, Any]], meta: dict[str, Any], out: Path
         ) -> list[dict[str, Any]]:
    """Run the jobs not in `done` (caching each that finished as it ends); every job's row, in grid order."""
    missing = [job for job in jobs if job.key not in done]
    with executor(meta["executor"] if missing else "inline", parallel=meta["jobs"], address=meta["address"]) as run:
        out.mkdir(parents=True, exist_ok=True)
        if not missing:  # what the tables and figures on disk were made of: they may be current already
            meta.update({key: value for key, value in _described(out).items() if key in ("tables_of", "figures")})
        write_atomic(out / MARKER, json.dumps(meta, indent=1).encode())
        _run_on(run, jobs, missing, done, meta, out)
    return [done[job.key] for job in jobs]


def _run_on(run: Callable[[list[Job], Callable[[dict[str, Any]], None]], None], jobs: list[Job], missing: list[Job],
            done: dict[str, dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    quiet = meta["quiet"]
    if missing and not quiet:
        where = meta["executor"] + (f" at {meta['address']}" if meta["address"] else "")
        print(f"{cli.PROG}: {len(jobs)} jobs, {len(jobs) - len(missing)} cached, {len(missing)} to run on {where}",
              file=sys.stderr)
    progress = tqdm(total=len(missing), unit="job", file=sys.stderr, delay=2, leave=False,
                    disable=True if quiet else None)  # None: on a terminal only

    def finished(row: dict[str, Any]) -> None:
        if row["status"] == OK or row["status"].startswith("diverged"):  # the setting's own result, every time
            store(out, row, write_atomic)  # a failed, timed-out or lost job is not cached: it runs again next time
        done[row["key"]] = row
        progress.update(1)

    with progress:
        run(missing, finished)


def _tables(out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], curves_at: dict[str, Any],
            fmt: str) -> int:
    """The tidy table (Parquet and CSV), the summary, the paired differences and the figures; printed."""
    settings, reference = meta["settings"], meta["reference"]
    first_seed = min(row["seed"] for row in rows)
    curves = {row["backend"]: row["curve"] for row in rows if row.get("curve") and row["status"] == OK
              and row["seed"] == first_seed and all(row.get(name) == value for name, value in curves_at.items())}
    jobs = pd.DataFrame(with_parity(rows, settings, reference))
    metrics = [metric for metric in METRICS if metric in jobs]  # val_accuracy: classification only
    jobs[metrics] = jobs[metrics].apply(pd.to_numeric, errors="coerce")  # a cached null is NaN
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
        drawn = _figures(out, jobs, summary, meta, curves, curves_at)
        try:
            write_atomic(out / HTML, html_page(lambda: sweep_page(meta, jobs, summary, differences, curves,
                                                                  _label(curves_at))).encode())
        except OutputError as err:
            print(f"{cli.PROG}: error: {err}", file=sys.stderr)
            drawn = []  # not current: made again next time, and the exit code says so
        write_atomic(out / MARKER, json.dumps({**meta, "tables_of": made_of if drawn else None, "figures": drawn},
                                              indent=1).encode())
    cli.write_stdout(f"{len(jobs)} jobs in {out}: jobs/ (the cache), {', '.join(TABLES)}, {', '.join(drawn)}\n\n"
                     + render(summary, differences, meta, fmt))
    failed = jobs[jobs["status"] != OK]
    if len(failed):
        print(f"{cli.PROG}: {len(failed)} of {len(jobs)} jobs did not finish: "
              + "; ".join(f"{row.backend} seed {row.seed} {row.status}" for row in failed.head(5).itertuples())
              + (" ..." if len(failed) > 5 else ""), file=sys.stderr)
    return 0 if not len(failed) and drawn else 1


def _figures(out: Path, jobs: pd.DataFrame, summary: pd.DataFrame, meta: dict[str, Any],
             curves: dict[str, dict[str, list[float]]], curves_at: dict[str, Any]) -> list[str]:
    """Each figure written whole; one that cannot be drawn is a line on stderr (the tables are written)."""
    from .comparison import sweep_plots

    settings, reference = meta["settings"], meta["reference"]
    title = f"{jobs['task'].iloc[0]} · {meta['dtype']}"
    label = _label(curves_at)
    try:
        name, loss = sweep_plots.loss_figure(summary, settings, title)
        figures = {name: loss, "parity.png": sweep_plots.parity_figure(jobs, settings, reference, title),
                   "step_time.png": sweep_plots.time_figure(summary, settings, title)}
        if curves:
            figures["curves.png"] = sweep_plots.curves_figure(curves, f"{label}, seed {jobs['seed'].min()}")
        drawn = {name: figure_bytes(figure, "png") for name, figure in figures.items()}
    except Exception as err:
        raise_stop_within(err)
        print(f"{cli.PROG}: error: the figures could not be drawn: {error_line(err)}", file=sys.stderr)
        return []
    for name, data in drawn.items():
        write_atomic(out / name, data)
    return list(drawn)


def _label(point: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in point.items()) or "the only point"


def render(summary: pd.DataFrame, differences: pd.DataFrame, meta: dict[str, Any], fmt: str) -> str:
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"summary": json.loads(summary.to_json(orient="records")),
                           "paired": json.loads(differences.to_json(orient="records"))}, indent=1) + "\n"
    if fmt == "markdown":
        return summary.to_markdown(index=False) + "\n\n" + differences.to_markdown(index=False) + "\n"
    return render_sweep(summary, differences, meta["settings"], meta["reference"])


# ---- show and diff of a sweep folder ----

def _described(out: Path) -> dict[str, Any]:
    """The folder's sweep.json as it was; empty when it is missing or damaged."""
    try:
        found = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def is_sweep(path: str) -> bool:
    return (Path(path) / MARKER).is_file()


def load_sweep(path: str, table: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The sweep's description and one of its tables; ValueError in one line when they are not there."""
    folder = Path(path)
    try:
        meta = json.loads((folder / MARKER).read_text())
        if not isinstance(meta, dict) or meta.get("format") != "backend-compare sweep" or "settings" not in meta:
            raise ValueError(f"{folder / MARKER} does not describe a sweep")
        frame = pd.read_parquet(folder / table) if table.endswith(".parquet") else pd.read_csv(folder / table)
    except FileNotFoundError as err:
        raise ValueError(f"{path}: {Path(err.filename or table).name} is missing: the sweep has not finished "
                         "(run it again to finish it)") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable sweep: {error_line(err)}") from None
    return meta, frame


def show_sweep(path: str, fmt: str) -> str:
    meta, summary = load_sweep(path, "summary.csv")
    _, differences = load_sweep(path, "paired.csv")
    return render(summary, differences, meta, fmt)


def sweep_report(path: str) -> Callable[[], str]:
    """What makes report.html of a saved sweep, its tables and cache read (ValueError when they cannot be)."""
    meta, jobs = load_sweep(path, "jobs.parquet")
    _, summary = load_sweep(path, "summary.csv")
    _, differences = load_sweep(path, "paired.csv")
    first = {str(name): value for name, value in jobs.iloc[0].items() if name in meta["settings"]}
    curves = {}
    for row in jobs[(jobs[list(first)] == pd.Series(first)).all(axis=1) & (jobs["seed"] == jobs["seed"].min())
                    ].itertuples():
        cached_row = cached(Path(path), [row.key]).get(row.key, {})
        if cached_row.get("curve"):
            curves[row.backend] = cached_row["curve"]
    return lambda: sweep_page(meta, jobs, summary, differences, curves, _label(first))


def diff_sweep_folders(path_a: str, path_b: str, threshold: float, atol: float) -> tuple[pd.DataFrame, str]:
    meta_a, jobs_a = load_sweep(path_a, "jobs.parquet")
    meta_b, jobs_b = load_sweep(path_b, "jobs.parquet")
    if meta_a["settings"] != meta_b["settings"]:
        raise cli.UsageError(f"the sweeps vary different settings ({', '.join(meta_a['settings'])} vs "
                             f"{', '.join(meta_b['settings'])}), so their points are not comparable")
    table = diff_sweeps(jobs_a, jobs_b, meta_a["settings"], meta_a["dtype"], threshold, atol)
    return table, f"A = {path_a}, B = {path_b}, paired by seed"
