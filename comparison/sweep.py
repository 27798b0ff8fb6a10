"""Sweeps: the full grid of settings × seeds × backends, each job cached under a key of everything that
decides its numbers, so a re-run (or a widened grid, or a run after Ctrl-C) executes only what is missing;
a tidy table of jobs (Parquet and CSV) and a summary with bootstrap intervals and paired differences."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import platform
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..backends import RowName, framework_version
from ..backends.testing import TOLERANCES
from ..tasks import Problem
from .run import BackendResult

SWEEPABLE = {"--lr": float, "--batch-size": int, "--epochs": int, "--optimizer": str, "--loss": str,
             "--momentum": float, "--weight-decay": float, "--huber-delta": float, "--dtype": str}
METRICS = ("final_train_loss", "final_val_loss", "max_abs_param_error", "function_error", "parity_to_reference",
           "us_per_step", "compile_seconds")
BOOTSTRAP = 2000  # resamples for each 95 % interval
JOBS = "jobs"  # the cache: one JSON file per finished job, named by its key


def split_grid(argv: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """argv without the sweepable options given as comma lists, and the grid: one dict per point of the
    product of those lists (option -> value as written)."""
    rest, lists = [], {}
    items = iter(argv)
    for item in items:
        option, equals, value = item.partition("=")
        if option in SWEEPABLE:
            given = value if equals else next(items, None)
            if given is None:
                rest.append(item)
                continue
            values = [part.strip() for part in given.split(",")]
            if len(values) != len(set(values)) or "" in values:
                raise ValueError(f"{option} must list distinct values; received: {given!r}")
            lists[option] = values
        else:
            rest.append(item)
    return rest, [dict(zip(lists, point, strict=True)) for point in itertools.product(*lists.values())]


def code_version() -> str:
    """A hash of this package's own code: results computed by other code are never mixed in."""
    import backend_compare

    digest = hashlib.sha256(__version__.encode())
    roots = [Path(backend_compare.__file__).parent] + [Path(p) for name in ("backends", "tasks", "comparison")
                                                      for p in getattr(backend_compare, name).__path__]
    for path in sorted({file for root in roots for file in root.glob("*.py")}):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def job_key(settings: dict[str, Any], backend: str, seed: int, code: str) -> str:
    row = RowName.parse(backend)
    identity = {"settings": settings, "backend": backend, "seed": seed, "code": code,
                "framework": framework_version(row.backend) if not row.label else row.label,
                "python": platform.python_version() if not row.label else row.label}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def job_row(settings: dict[str, Any], seed: int, problem: Problem, result: BackendResult,
            key: str) -> dict[str, Any]:
    """One tidy row: the settings, the backend and seed, what it reached, and its time."""
    steady = result.steady_steps
    error = (max(float(np.max(np.abs(result.params[name] - value))) for name, value in problem.truth.items())
             if problem.truth and result.params and len(problem.spec) == 1 else math.nan)
    return {**settings, "backend": result.backend, "seed": seed, "status": result.status, "mode": result.mode,
            "final_train_loss": result.final_train_loss, "final_val_loss": result.final_val_loss,
            "max_abs_param_error": error,
            "function_error": math.nan if result.final_function_error is None else result.final_function_error,
            "us_per_step": 1e6 * result.seconds / steady if steady else math.nan,
            "compile_seconds": result.compile_seconds, "steps": result.steps, "key": key,
            "params": {name: value.tolist() for name, value in result.params.items()}}  # for parity, not a column


def with_parity(rows: list[dict[str, Any]], settings: list[str], reference: str) -> list[dict[str, Any]]:
    """Each row with its largest parameter difference from the reference backend's job of the same point and
    seed (same data and start); the parameters themselves stay in the cache."""
    def point(row: dict[str, Any]) -> tuple[Any, ...]:
        return (*(row.get(name) for name in settings), row["seed"])

    references = {point(row): row.get("params") or {} for row in rows if row["backend"] == reference}
    found = []
    for row in rows:
        mine, theirs = row.get("params") or {}, references.get(point(row), {})
        common = [name for name in mine if name in theirs]
        parity = (max(float(np.max(np.abs(np.asarray(mine[name]) - np.asarray(theirs[name])))) for name in common)
                  if common and row["status"] == "ok" else math.nan)
        found.append({**{k: v for k, v in row.items() if k != "params"}, "reference": reference,
                      "parity_to_reference": parity})
    return found


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The 95 % percentile interval of the mean over BOOTSTRAP resamples; NaN with fewer than two values."""
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    means = rng.choice(values, size=(BOOTSTRAP, values.size), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarise(jobs: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Per setting and backend, for each metric: mean, std, median and a bootstrap 95 % interval over seeds."""
    rng = np.random.default_rng(0)
    rows = []
    for keys, group in jobs.groupby([*settings, "backend"], sort=False, dropna=False):
        row = dict(zip([*settings, "backend"], keys if isinstance(keys, tuple) else (keys,), strict=True))
        row["seeds"] = len(group)
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            low, high = bootstrap_interval(values, rng)
            row.update({f"{metric}_mean": finite.mean() if finite.size else math.nan,
                        f"{metric}_std": finite.std(ddof=1) if finite.size > 1 else math.nan,
                        f"{metric}_median": float(np.median(finite)) if finite.size else math.nan,
                        f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def paired(jobs: pd.DataFrame, settings: list[str], reference: str, dtype: str, metric: str = "final_val_loss"
           ) -> pd.DataFrame:
    """Per setting and backend, its difference from the reference backend on the same seeds (same data and
    start, so paired): mean, bootstrap 95 % interval and a verdict. Differences within the dtype's tolerance
    of the reference's value are rounding: an interval inside that margin is "equivalent"."""
    rng = np.random.default_rng(1)
    rows = []
    for keys, group in jobs.groupby(settings, sort=False, dropna=False):
        by = group.pivot_table(index="seed", columns="backend", values=metric, aggfunc="first")
        if reference not in by:
            continue
        for backend in [b for b in by.columns if b != reference]:
            difference = (by[backend] - by[reference]).to_numpy(dtype=float)
            difference = difference[np.isfinite(difference)]
            low, high = bootstrap_interval(difference, rng)
            level = float(np.nanmean(np.abs(by[reference].to_numpy(dtype=float))))
            margin = TOLERANCES[dtype]["atol"] + TOLERANCES[dtype]["rtol"] * level
            row = dict(zip(settings, keys if isinstance(keys, tuple) else (keys,), strict=True))
            row.update({"backend": backend, "reference": reference, "metric": metric, "pairs": difference.size,
                        "mean_difference": difference.mean() if difference.size else math.nan,
                        "ci_low": low, "ci_high": high, "margin": margin,
                        "verdict": _verdict(backend, reference, low, high, margin)})
            rows.append(row)
    return pd.DataFrame(rows)


def _verdict(backend: str, reference: str, low: float, high: float, margin: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no conclusion (fewer than two seeds)"
    if -margin <= low and high <= margin:
        return f"equivalent within ±{margin:.2g}"
    if high < -margin:
        return f"{backend} lower"
    if low > margin:
        return f"{reference} lower"
    return "no conclusion"


def cached(folder: Path, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The cached rows among `keys` (a damaged file is not a result: that job runs again)."""
    found = {}
    for key in keys:
        try:
            found[key] = json.loads((folder / JOBS / f"{key}.json").read_text())
        except (OSError, ValueError):
            continue
    return found


def store(folder: Path, row: dict[str, Any], write: Callable[[Path, bytes], None]) -> None:
    (folder / JOBS).mkdir(parents=True, exist_ok=True)
    plain = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    write(folder / JOBS / f"{row['key']}.json", json.dumps(plain, default=str).encode())
