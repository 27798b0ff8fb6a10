"""A sweep's folder read back: whether a folder is one, its tables printed (`show`), its page made again
(`report`) and two of them compared point by point (`diff`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends import error_line
from ..comparison.cache import CACHE, OLD_CACHE, cached
from ..comparison.html import sweep_page
from ..comparison.saved import HTML, is_our_plot
from ..comparison.sweep import diff_sweeps, render_sweep
from .console import UsageError

MARKER = "sweep.json"  # what makes a folder a previous sweep's, and what it was


def render(summary: pd.DataFrame, differences: pd.DataFrame, meta: dict[str, Any], fmt: str) -> str:
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "json":
        return json.dumps({"summary": json.loads(summary.to_json(orient="records")),
                           "paired": json.loads(differences.to_json(orient="records"))}, indent=1) + "\n"
    if fmt == "markdown":
        return summary.to_markdown(index=False) + "\n\n" + differences.to_markdown(index=False) + "\n"
    return render_sweep(summary, differences, meta["settings"], meta["reference"])


def label(point: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in point.items()) or "the only point"


def described(out: Path) -> dict[str, Any]:
    """The folder's sweep.json as it was; empty when it is missing or damaged."""
    try:
        found = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def is_sweep(path: str) -> bool:
    return (Path(path) / MARKER).is_file()


TABLES = {"jobs.parquet", "jobs.csv", "summary.csv", "paired.csv", HTML}
JOB_ENTRY = re.compile(r"[0-9a-f]{24}\.json")


def is_our_sweep(out: Path) -> bool:
    """Whether the suite provably wrote `out` as a sweep: its sweep.json describes one, and everything else
    there is a file a sweep writes (its tables, figures signed as ours, cache entries named by job key)."""
    meta = described(out)
    if meta.get("format") != "backend-compare sweep" or not (out / MARKER).is_file():
        return False
    recorded = meta.get("figures")
    drawn: list[Any] = recorded if isinstance(recorded, list) else []  # as sweeps before 0.3 record them
    for entry in out.iterdir():
        if entry.name in (MARKER, *TABLES) and entry.is_file() and not entry.is_symlink():
            continue
        if entry.suffix == ".png" and (is_our_plot(entry) or entry.name in drawn) and not entry.is_symlink():
            continue
        if entry.name in (CACHE, f"{CACHE}-journal") and entry.is_file() and not entry.is_symlink():
            continue  # the cache, and the journal of a transaction a killed sweep left (rolled back when opened)
        if entry.name == OLD_CACHE and entry.is_dir() and not entry.is_symlink() and all(
                JOB_ENTRY.fullmatch(job.name) and not job.is_symlink() for job in entry.iterdir()):
            continue
        return False
    return True


def load_sweep(path: str, table: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The sweep's description and one of its tables; ValueError in one line when they are not there."""
    folder = Path(path)
    try:
        meta = json.loads((folder / MARKER).read_text())
        if not isinstance(meta, dict) or meta.get("format") != "backend-compare sweep" or "settings" not in meta:
            raise ValueError(f"{folder / MARKER} does not describe a sweep")
        frame = pd.read_parquet(folder / table) if table.endswith(".parquet") else _read_csv(folder / table)
    except FileNotFoundError as err:
        raise ValueError(f"{path}: {Path(err.filename or table).name} is missing: the sweep has not finished "
                         "(run it again to finish it)") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable sweep: {error_line(err)}") from None
    return meta, frame


def _read_csv(path: Path) -> pd.DataFrame:
    if path.name == "paired.csv" and path.is_file() and path.stat().st_size <= 1:
        return pd.DataFrame()  # a sweep of one backend pairs nothing: its table is written empty
    return pd.read_csv(path)


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
    shown = jobs[(jobs[list(first)] == pd.Series(first)).all(axis=1) & (jobs["seed"] == jobs["seed"].min())]
    rows = cached(Path(path), list(shown["key"]))  # one read of the cache for the point's backends
    curves = {row.backend: rows[row.key]["curve"] for row in shown.itertuples()
              if rows.get(row.key, {}).get("curve")}
    return lambda: sweep_page(meta, jobs, summary, differences, curves, label(first))


def diff_sweep_folders(path_a: str, path_b: str, threshold: float, atol: float) -> tuple[pd.DataFrame, str]:
    meta_a, jobs_a = load_sweep(path_a, "jobs.parquet")
    meta_b, jobs_b = load_sweep(path_b, "jobs.parquet")
    if meta_a["settings"] != meta_b["settings"]:
        raise UsageError(f"the sweeps vary different settings ({', '.join(meta_a['settings'])} vs "
                             f"{', '.join(meta_b['settings'])}), so their points are not comparable")
    table = diff_sweeps(jobs_a, jobs_b, meta_a["settings"], meta_a["dtype"], threshold, atol)
    return table, f"A = {path_a}, B = {path_b}, paired by seed"
