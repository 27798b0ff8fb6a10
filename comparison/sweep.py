"""Sweeps: the full grid of settings × seeds × backends, each job cached under a key of everything that
decides its numbers, so a re-run (or a widened grid, or a run after Ctrl-C) executes only what is missing;
a tidy table of jobs (Parquet and CSV) and a summary with bootstrap intervals and paired differences."""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .. import __version__
from ..backends import RowName
from ..backends.tolerances import TOLERANCES, allowed_tolerance, applicable
from ..optimizers import clipping, schedules
from ..tasks import Problem, task_options
from .convergence import convergence
from .metrics import accuracy, largest_difference, largest_magnitude, us_per_step
from .run import BackendResult, loss_curve
from .saved import ROUNDING_ULPS
from .verdicts import verdict_words, worst_pairs

# The run's own settings a sweep may vary (each one value per point); the tasks add the options they declare
# sweepable (sweepable() below).
RUN_SWEEPABLE = {"--lr": float, "--batch-size": int, "--epochs": int, "--optimizer": str, "--schedule": str,
                 "--clip": str, "--loss": str, "--momentum": float, "--weight-decay": float, "--huber-delta": float,
                 "--label-smoothing": float, "--dtype": str}
METRICS = ("final_train_loss", "final_val_loss", "max_abs_param_error", "function_error", "parity_to_reference",
           "val_accuracy", "us_per_step", "compile_seconds")
BOOTSTRAP = 2000  # resamples for each 95 % interval
CURVE_POINTS = 100  # of each job's loss curve, kept in its cache entry
RIDING = ("params", "curve")  # in a job's cache entry, not in the tables
TIME_MARGIN = 0.05  # per-step times within ±5 % of each other are "equivalent": timing noise, not a difference
X_SETTINGS = ("lr", "batch_size", "weight_decay", "momentum", "epochs", "huber_delta")  # a figure's x, by preference
LOG_X = ("lr", "weight_decay", "batch_size")  # drawn on a log axis
RATIO_FLOOR = 1e-4  # a parity this far within its tolerance, an exact match included, is drawn here


@functools.cache
def sweepable() -> dict[str, Callable[[str], Any]]:
    """Every option a sweep may give as a comma list, with what reads one of its values."""
    declared = {option.flag: option.parse for option, _ in task_options().values()
                if option.sweepable and option.parse is not None}
    return {**RUN_SWEEPABLE, **declared}


def task_settings() -> tuple[str, ...]:
    """The sweepable settings the tasks declare (their columns: n_samples, noise, ...)."""
    return tuple(option.name for option, _ in task_options().values() if option.sweepable)


def split_grid(argv: list[str]) -> tuple[list[str], list[dict[str, str]]]:
    """argv without the sweepable options given as comma lists, and the grid: one dict per point of the
    product of those lists (option -> value as written)."""
    rest, lists = [], {}
    options = sweepable()
    items = iter(argv)
    for item in items:
        option, equals, value = item.partition("=")
        if option in options:
            given = value if equals else next(items, None)
            if given is None:
                rest.append(item)
                continue
            values = [part.strip() for part in given.split(",")]
            if len({_normalised(option, value) for value in values}) != len(values) or "" in values:
                raise ValueError(f"{option} must list distinct values; received: {given!r}")
            lists[option] = values
        else:
            rest.append(item)
    return rest, [dict(zip(lists, point, strict=True)) for point in itertools.product(*lists.values())]


# Texts that mean one schedule or clip however they are written: cosine and cosine:warmup=0, value:0.1 and value:.1
CANONICAL_TEXT: dict[str, Callable[[str], object]] = {"--schedule": lambda text: schedules.parse(text).text(),
                                                      "--clip": lambda text: repr(clipping.parse(text))}


def _normalised(option: str, value: str) -> object:
    """A value as the option reads it: 0.03 and 0.030, or 10 and 010, are one value given twice."""
    try:
        return CANONICAL_TEXT.get(option, sweepable()[option])(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return value  # not a value of the option at all: its own check says so


@functools.cache
def code_version() -> str:
    """A hash of this package's own code: results computed by other code are never mixed in."""
    import backend_compare

    digest = hashlib.sha256(__version__.encode())
    root = Path(backend_compare.__file__).parent
    files = {Path(folder, name) for folder, _, names in os.walk(root, followlinks=True)  # the linked folders too
             for name in names if name.endswith(".py")}
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def job_key(numbers: dict[str, Any], row: RowName, seed: int, code: str, framework: str) -> str:
    """A name for the job's numbers: what decides them (the checked task, data and options), its backend,
    seed, this package's code, the framework's version ("" for another environment's row: its label stands
    for it) and Python's."""
    identity = {"numbers": numbers, "backend": str(row), "seed": seed, "code": code,
                "framework": framework or row.label,
                "python": platform.python_version() if not row.label else row.label}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def job_row(settings: dict[str, Any], seed: int, problem: Problem | None, result: BackendResult,
            key: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One tidy row: the settings, the backend and seed, what it reached, whether it converged (given the
    job's options, for a model with an exact optimum), and its time; its parameters and loss curve ride
    along for parity and plots (kept in the cache, not columns)."""
    error = (largest_difference(result.params, problem.truth)
             if problem is not None and problem.truth and result.params and len(problem.spec) == 1 else math.nan)
    converged, note = convergence(problem, options, result)
    return {**settings, "backend": result.backend, "seed": seed, "status": result.status, "mode": result.mode,
            "converged": converged, "note": note, "initial_loss": result.initial_loss,
            "final_train_loss": result.final_train_loss, "final_val_loss": result.final_val_loss,
            "max_abs_param_error": error,
            "function_error": math.nan if result.final_function_error is None else result.final_function_error,
            "us_per_step": us_per_step(result),
            "compile_seconds": result.compile_seconds, "steps": result.steps, "key": key,
            "params": {name: value.tolist() for name, value in result.params.items()},
            "curve": loss_curve(result, CURVE_POINTS),
            **({"val_accuracy": accuracy(result.confusion["val"])} if result.confusion else {})}  # classification


def with_parity(rows: list[dict[str, Any]], settings: list[str], reference: str, dtype: str,
                optimizer: str) -> list[dict[str, Any]]:
    """Each row with its largest parameter difference from the reference backend's job of the same point and
    seed (same data and start), and the tolerance the pair is held to as a run's parity verdict holds it
    (the point's dtype and its allowances, at the pair's largest parameter); the parameters themselves stay
    in the cache."""
    def point(row: dict[str, Any]) -> tuple[Any, ...]:
        return (*(row.get(name) for name in settings), row["seed"])

    references = {point(row): row.get("params") or {} for row in rows if row["backend"] == reference}
    found = []
    for row in rows:
        mine, theirs = row.get("params") or {}, references.get(point(row), {})
        parity = largest_difference(mine, theirs) if row["status"] == "ok" else math.nan
        allowed = pair_tolerance(row, reference, dtype, optimizer)
        scale = largest_magnitude([np.asarray(value, dtype=float) for value in [*mine.values(), *theirs.values()]],
                                  0.0)
        found.append({**{k: v for k, v in row.items() if k not in RIDING}, "reference": reference,
                      "parity_to_reference": parity, "parity_tolerance": allowed["atol"] + allowed["rtol"] * scale})
    return found


def pair_tolerance(row: dict[str, Any], reference: str, dtype: str, optimizer: str) -> dict[str, float]:
    """The tolerance a job's row is held to against the reference's: its point's dtype, widened by the named
    allowances that concern the pair."""
    at = str(row.get("dtype", dtype))
    pair = [RowName.parse(name).backend for name in (row["backend"], reference)]
    return allowed_tolerance(at, pair, applicable(at, pair, str(row.get("optimizer", optimizer)), layer_labels(row)))


def layer_labels(row: dict[str, Any]) -> tuple[str, ...]:
    """The layers a job's model may hold, read from its settings (--activation, the words of --layers): enough
    to find the allowances of one layer type, which name it by its label."""
    words = [str(row["activation"])] if isinstance(row.get("activation"), str) else []
    if isinstance(row.get("layers"), str):
        words += re.findall(r"[a-z_][a-z_0-9]*", str(row["layers"]))
    return tuple(dict.fromkeys(words))


def ratio_text(ratio: float) -> str:
    """A cell's multiple of the tolerance: "-" for none, "0" for an exact match, "0.0031×", "12×"."""
    if not math.isfinite(ratio):
        return "-"
    return "0" if ratio == 0 else f"{ratio:.2g}×"


def parity_ratio(jobs: pd.DataFrame, dtype: str) -> pd.Series:
    """Each job's parity to the reference in multiples of its tolerance; a table saved before the tolerance
    was has it at the dtype's, for parameters of size 1."""
    if "parity_tolerance" in jobs:
        tolerance = pd.to_numeric(jobs["parity_tolerance"], errors="coerce")
    else:
        tolerance = pd.Series([sum(TOLERANCES[str(at)].values()) for at in jobs.get("dtype", [dtype] * len(jobs))],
                              index=jobs.index)
    return pd.to_numeric(jobs["parity_to_reference"], errors="coerce") / tolerance


class ParityGrid(NamedTuple):
    """The parity figures' grid (the report's PNG, the page's heatmap): a row per point, a column per backend."""

    backends: list[str]
    labels: list[str]  # each row's point, "all" for a sweep of one
    ratios: np.ndarray  # the largest parity over seeds in multiples of its tolerance
    shades: np.ndarray  # their log10, an exact match at RATIO_FLOOR's
    top: float  # the scale's top: at least 100×
    ticks: list[int]  # the scale's powers of ten


def parity_grid(jobs: pd.DataFrame, changing: list[str], reference: str, dtype: str) -> ParityGrid:
    """The largest parity to the reference over seeds, per point and backend, in multiples of its tolerance."""
    others = jobs[jobs["backend"] != reference].assign(ratio=parity_ratio(jobs, dtype))
    grid = others.pivot_table(index=changing or ["task"], columns="backend", values="ratio", aggfunc="max",
                              sort=False)
    labels = [" ".join(f"{name}={value}" for name, value in zip(changing, key if isinstance(key, tuple) else (key,),
                                                                 strict=False)) or "all" for key in grid.index]
    ratios = grid.to_numpy(dtype=float)
    shades = np.log10(np.maximum(ratios, RATIO_FLOOR))
    top = max(2.0, float(np.nanmax(shades, initial=0.0)))
    ticks = list(range(math.floor(math.log10(RATIO_FLOOR)), math.floor(top) + 1, 2))
    return ParityGrid([str(backend) for backend in grid.columns], labels, ratios, shades, top, ticks)


def varying(table: pd.DataFrame, settings: list[str]) -> list[str]:
    """The settings that take more than one value in the sweep."""
    return [name for name in settings if table[name].nunique(dropna=False) > 1]


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
        known = _known(group.get("converged", pd.Series(dtype=object)))
        row["converged_seeds"] = sum(known) if known else math.nan  # unknown: no exact optimum to tell by
        for metric in (metric for metric in METRICS if metric in group):  # val_accuracy: classification only
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            low, high = bootstrap_interval(values, rng)
            row.update({f"{metric}_mean": finite.mean() if finite.size else math.nan,
                        f"{metric}_std": finite.std(ddof=1) if finite.size > 1 else math.nan,
                        f"{metric}_median": float(np.median(finite)) if finite.size else math.nan,
                        f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def paired(jobs: pd.DataFrame, settings: list[str], reference: str, dtype: str) -> pd.DataFrame:
    """Per setting and backend, against the reference backend on the same seeds (same data and start, so
    paired): the validation loss as a mean difference and the per-step time as a geometric-mean ratio, each
    with a bootstrap 95 % interval and a verdict, and the parameters' parity verdict (_parity_verdicts). A loss
    difference within the dtype's tolerance of the reference's value is rounding, a time ratio within
    ±TIME_MARGIN is noise: an interval inside that margin is "equivalent"; a loss where a job of either
    backend did not converge is "not converged"."""
    rng = np.random.default_rng(1)
    rows = []
    for keys, group in jobs.groupby(settings, sort=False, dropna=False):
        point = dict(zip(settings, keys if isinstance(keys, tuple) else (keys,), strict=True))
        tolerance = TOLERANCES[str(point.get("dtype", dtype))]
        for metric in ("final_val_loss", "us_per_step"):
            by = group[group["status"] == "ok"].pivot_table(index="seed", columns="backend", values=metric,
                                                            aggfunc="first")
            if reference not in by:
                continue
            for backend in [b for b in group["backend"].unique() if b != reference]:
                theirs = by[backend] if backend in by else pd.Series(dtype=float)
                compared = _compared(metric, theirs, by[reference], tolerance, rng, backend, reference)
                unsettled = [name for name in (backend, reference) if metric == "final_val_loss" and not all(
                    _known(group[(group["backend"] == name) & (group["status"] == "ok")].get(
                        "converged", pd.Series(dtype=object))))]
                if unsettled:  # two backends agreeing on where they stopped short say nothing of the optimum
                    compared["verdict"] = f"not converged ({', '.join(unsettled)})"
                rows.append({**point, "backend": backend, "reference": reference, "metric": metric, **compared})
        rows += _parity_verdicts(group, point, reference, dtype)
    return pd.DataFrame(rows)


def _parity_verdicts(group: pd.DataFrame, point: dict[str, Any], reference: str, dtype: str) -> list[dict[str, Any]]:
    """Each backend's parameters against the reference's at one point, as a run's parity verdict words them:
    the worst seed in multiples of its tolerance and, beyond it, against the rounding noise measured there."""
    if "parity_to_reference" not in group:
        return []
    finished = group[group["status"] == "ok"].assign(ratio=parity_ratio(group, dtype))
    rows = []
    for backend in [b for b in group["backend"].unique() if b != reference]:
        mine = finished[(finished["backend"] == backend) & finished["ratio"].notna()]
        noise = mine["noise_ratio"] if "noise_ratio" in mine else pd.Series(math.nan, index=mine.index)
        worst = worst_pairs([[{"backend_a": reference, "backend_b": backend, "tolerance_ratio": ratio,
                               "noise_ratio": None if pd.isna(measured) else measured}]
                             for ratio, measured in zip(mine["ratio"], noise, strict=True)]).get((reference, backend))
        if worst is not None:
            rows.append({**point, "backend": backend, "reference": reference, "metric": "parity_to_reference",
                         "pairs": len(mine), "statistic": "× tolerance, worst seed", "value": worst.ratio,
                         "ci_low": math.nan, "ci_high": math.nan, "margin": 1.0,
                         "verdict": verdict_words(worst.ratio, worst.noise_ratio)})
    return rows


def _known(converged: pd.Series) -> list[bool]:
    """The jobs' convergence where it is known (a model with an exact optimum)."""
    return [bool(value) for value in converged if value is not None and not pd.isna(value)]


def _compared(metric: str, theirs: pd.Series, ours: pd.Series, tolerance: dict[str, float],
              rng: np.random.Generator, backend: str, reference: str) -> dict[str, Any]:
    a, b = theirs.align(ours, join="inner")
    if metric == "us_per_step":  # a ratio: on the log scale, where a slowdown and a speed-up are symmetric
        logs = np.log((a / b).to_numpy(dtype=float))
        logs = logs[np.isfinite(logs)]
        low, high = bootstrap_interval(logs, rng)
        margin = math.log1p(TIME_MARGIN)
        return {"pairs": logs.size, "statistic": "ratio", "value": math.exp(logs.mean()) if logs.size else math.nan,
                "ci_low": math.exp(low), "ci_high": math.exp(high), "margin": TIME_MARGIN,
                "verdict": _verdict(backend, reference, low, high, margin, ("faster", f"within ±{TIME_MARGIN:.0%}"))}
    difference = (a - b).to_numpy(dtype=float)
    difference = difference[np.isfinite(difference)]
    low, high = bootstrap_interval(difference, rng)
    level = float(np.nanmean(np.abs(ours.to_numpy(dtype=float)))) if len(ours) else math.nan
    margin = tolerance["atol"] + tolerance["rtol"] * level
    return {"pairs": difference.size, "statistic": "difference",
            "value": difference.mean() if difference.size else math.nan, "ci_low": low, "ci_high": high,
            "margin": margin, "verdict": _verdict(backend, reference, low, high, margin)}


def _verdict(backend: str, reference: str, low: float, high: float, margin: float,
             words: tuple[str, str] | None = None) -> str:
    lower, within = words or ("lower", f"within ±{margin:.2g}")
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no conclusion (fewer than two seeds)"
    if -margin <= low and high <= margin:
        return f"equivalent {within}"
    if high < -margin:
        return f"{backend} {lower}"
    if low > margin:
        return f"{reference} {lower}"
    return "no conclusion"


GATED = ("final_train_loss", "final_val_loss", "max_abs_param_error", "function_error", "parity_to_reference")
TIMING = ("us_per_step", "compile_seconds")


def diff_sweeps(old: pd.DataFrame, new: pd.DataFrame, settings: list[str], dtype: str, threshold: float,
                atol: float) -> pd.DataFrame:
    """Per point, backend and metric, over the seeds both sweeps ran: the means in A and B, the mean paired
    change (same seed: same data and start) with its bootstrap 95 % interval, and a verdict.

    - equal: every seed's value is the same to ROUNDING_ULPS ulp of the dtype;
    - within noise: with two seeds or more, the interval of the change holds zero;
    - WORSE: a gated metric rose by more than threshold·|A| + atol, and, with two seeds or more, its
      interval lies above zero; so does a job that finished in A and not in B;
    - better / same otherwise; timing (per-step, compile) is reported with its interval, never gated
      ("timing: same" within ±TIME_MARGIN).
    """
    rng = np.random.default_rng(2)
    keys = [*settings, "backend"]
    merged = old.merge(new, on=[*keys, "seed"], how="outer", suffixes=("_a", "_b"), sort=False)
    groups = dict(list(merged.groupby(keys, sort=False, dropna=False)))
    order = pd.concat([old[keys], new[keys]]).drop_duplicates().itertuples(index=False, name=None)
    rows = []
    for group_keys in order:  # the sweeps' own order (an outer merge sorts)
        group = groups[group_keys]
        point = dict(zip(keys, group_keys, strict=True))
        gone = group[(group["status_a"] == "ok") & (group["status_b"] != "ok")]
        if len(gone):
            now = sorted({str(status) if isinstance(status, str) else "missing" for status in gone["status_b"]})
            rows.append({**point, "metric": f"status: {', '.join(now)}", "seeds": len(gone), "verdict": "WORSE"})
        both = group[(group["status_a"] == "ok") & (group["status_b"] == "ok")]
        eps = float(np.finfo(str(point.get("dtype", dtype))).eps)
        for metric in GATED + TIMING:
            a, b = (pd.to_numeric(both[f"{metric}_{side}"], errors="coerce").to_numpy(dtype=float) for side in "ab")
            finite = np.isfinite(a) & np.isfinite(b)
            if finite.any():
                rows.append({**point, "metric": metric, "seeds": int(finite.sum()),
                             **_change(metric, a[finite], b[finite], eps, threshold, atol, rng)})
    columns = [*keys, "metric", "seeds", "A", "B", "change", "ci_low", "ci_high", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def _change(metric: str, a: np.ndarray, b: np.ndarray, eps: float, threshold: float, atol: float,
            rng: np.random.Generator) -> dict[str, Any]:
    change = b - a
    low, high = bootstrap_interval(change, rng)
    found = {"A": a.mean(), "B": b.mean(), "change": change.mean(), "ci_low": low, "ci_high": high}
    noisy = math.isfinite(low)  # two seeds or more: an interval to judge the change by
    bar = threshold * abs(a.mean()) + atol
    if np.all(np.abs(change) <= ROUNDING_ULPS * eps * np.maximum(np.abs(a), np.abs(b))):
        verdict = "equal"
    elif noisy and low <= 0 <= high:
        verdict = "within noise"
    elif metric in TIMING:
        verdict = ("timing: same" if abs(change.mean()) <= TIME_MARGIN * abs(a.mean()) else
                   f"timing: {'slower' if change.mean() > 0 else 'faster'}")
    elif change.mean() > bar:
        verdict = "WORSE"
    elif change.mean() < -bar:
        verdict = "better"
    else:
        verdict = "same"
    return {**found, "verdict": verdict}


def render_sweep(summary: pd.DataFrame, differences: pd.DataFrame, settings: list[str], reference: str) -> str:
    """The summary a person reads: per point and backend, the validation loss with its interval and the
    per-step time; then each backend against the reference, paired by seed."""
    def number(value: Any) -> str:
        return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4g}"

    def setting(column: pd.Series) -> pd.Series:
        return column.map(lambda value: f"{value:g}" if isinstance(value, float) else value)

    known = "converged_seeds" in summary and summary["converged_seeds"].notna().any()
    converged = {"converged": [f"{int(done)}/{seeds}" if pd.notna(done) else "-" for done, seeds in
                               zip(summary["converged_seeds"], summary["seeds"], strict=True)]} if known else {}
    shown = pd.DataFrame({**{name: setting(summary[name]) for name in [*settings, "backend", "seeds"]}, **converged,
                          "val loss (mean)": summary["final_val_loss_mean"].map(number),
                          "95% CI": [f"{number(lo)} .. {number(hi)}" for lo, hi in
                                     zip(summary["final_val_loss_ci_low"], summary["final_val_loss_ci_high"],
                                         strict=True)],
                          "µs/step (mean)": summary["us_per_step_mean"].map(number),
                          "µs/step 95% CI": [f"{number(lo)} .. {number(hi)}" for lo, hi in
                                             zip(summary["us_per_step_ci_low"], summary["us_per_step_ci_high"],
                                                 strict=True)]})
    text = shown.to_string(index=False) + "\n"
    if not len(differences):
        return text + "\nno paired differences: one backend\n"
    for metric, title in (("final_val_loss", "validation loss minus"), ("us_per_step", "per-step time over"),
                          ("parity_to_reference", "largest parameter difference, in multiples of its tolerance, "
                                                  "from")):
        rows = differences[differences["metric"] == metric]
        if len(rows):
            shown_as = ratio_text if metric == "parity_to_reference" else number
            table = pd.DataFrame({**{name: setting(rows[name]) for name in [*settings, "backend"]},
                                  "value": rows["value"].map(shown_as),
                                  "95% CI": [f"{number(lo)} .. {number(hi)}" for lo, hi in
                                             zip(rows["ci_low"], rows["ci_high"], strict=True)],
                                  "verdict": rows["verdict"]})
            if metric == "parity_to_reference":  # the worst seed, no interval
                table = table.drop(columns="95% CI")
            text += f"\n{title} {reference}'s, paired by seed:\n{table.to_string(index=False)}\n"
    return text
