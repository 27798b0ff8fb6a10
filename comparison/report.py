"""Tables from backend results (one seed or several), and their rendering as text or JSON.

A report is a plain dict: header fields plus every table as a list of records. Everything a
renderer prints comes from that dict, so a saved report renders the same later.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
from typing import Any

import numpy as np
import pandas as pd

from ..backends import BACKENDS, package_version, registration
from ..backends.tolerances import TOLERANCES
from ..optimizers.training import described
from ..tasks import Problem
from .fits import OBJECTIVE, OBJECTIVE_MEANS, convergence_note, function_table, loss_table, param_table
from .metrics import largest_difference, largest_magnitude, step_loss_difference
from .numbers import formatted, number_format
from .run import OK, REFERENCE, BackendResult, loss_curve
from .verdicts import Noise, pair_verdict

FORMATS = ("table", "markdown", "csv", "json")
FORMAT_MARKER = "backend-compare run"  # results.json's "format": what makes a folder a run of this tool
TITLES = {
    "params": "Parameters",
    "function": "Function error on the held-out grid (RMS)",
    "losses": "Losses",
    "parity": "Parity: largest absolute difference between backends",
    "init": "Native initialisation",
    "curves": "Training and validation loss along the steps",
    "classes": "Accuracy per class (the share of each class's rows predicted as it)",
    "shadow": ("Against the float64 shadow: each backend's error against NumPy's hand-derived float64 run from the "
               "same start, data and batches\n(param_error: the largest, each parameter's over its largest value)"),
    "layers": "The dtype each layer's output had, as each framework's policy computed it",
    "loss_scale": "Loss scale (dynamic, float16): each fall is a step skipped for a gradient that overflowed",
    "math_modes": "Where each backend ran, and its framework's math modes",
}
WRITTEN_NOT_SHOWN = ("confusion",)  # tables saved as CSV (and drawn in report.html) but not printed
CONFUSION_CLASSES = 50  # up to this many classes the confusion matrices are kept: classes² rows per backend
TIMING_TITLE = "Timing (steady steps; compile_seconds: the first step at each batch size)"
# combined over seeds by listing the distinct values
TEXT_COLUMNS = ("status", "mode", "note", "verdict", "tolerance", "dtype", "changes", "value")
WIDTH = 120  # columns of text before a table is wrapped
KEYS = {  # the columns that identify a row; the others are metrics, averaged over seeds
    "summary": ["backend"], "params": ["backend", "parameter"], "function": ["backend"], "losses": ["backend"],
    "parity": ["backend_a", "backend_b"], "init": ["backend", "initialisation and batches"],
    "curves": ["backend", "step"], "trajectory": ["backend_a", "backend_b", "step"], "steps": ["backend", "step"],
    "classes": ["backend", "class"], "confusion": ["backend", "split", "true", "predicted"],
    "shadow": ["backend"], "layers": ["backend", "layer"], "loss_scale": ["backend"],
    "math_modes": ["backend", "setting"],
}
NO_PARITY = ("No parity table: with --init native the backends start from different parameters and see "
             "different batches, so their differences are not the frameworks'.")
LOWER_IS_BETTER = ("error", "diff", "final_", "seconds", "us_per_step")
HIGHER_IS_BETTER = ("accuracy",)
FRAMEWORK_PACKAGES = ("numpy", "pandas", *(package for name in BACKENDS for package in (
    registration(name).framework, *registration(name).companions) if package))


def _trained_pairs(results: list[BackendResult], shared: bool) -> list[tuple[BackendResult, BackendResult]]:
    """Pairs of backends that finished in shared mode. A diverged or failed run has nothing comparable;
    in native mode the backends start from different parameters and see different batches."""
    finished = [r for r in results if r.init != REFERENCE and r.status == OK]
    return list(itertools.combinations(finished, 2)) if shared else []


def parity_table(results: list[BackendResult], shared: bool = True, dtype: str | None = None,
                 optimizer: str = "sgd", noise: Noise | None = None, layers: tuple[str, ...] = ()) -> pd.DataFrame:
    """Each pair's largest differences; given the run's dtype, the pair's verdict against its tolerance too
    (and, beyond it, against the run's rounding `noise`)."""
    verdicts = ["verdict", "tolerance_ratio", "noise_ratio", "tolerance"] if dtype else []
    rows = [{"backend_a": a.backend, "backend_b": b.backend,
             "max_abs_param_diff": largest_difference(a.params, b.params),
             "max_abs_step_loss_diff": step_loss_difference(a, b),
             **(pair_verdict(a, b, dtype, optimizer, noise, layers) if dtype else {})}
            for a, b in _trained_pairs(results, shared)]
    table = pd.DataFrame(rows, columns=["backend_a", "backend_b", "max_abs_param_diff", "max_abs_step_loss_diff",
                                        *verdicts])
    # the noise is measured only for a run with a pair beyond its tolerance: a column of it there alone
    return table.drop(columns="noise_ratio") if dtype and table["noise_ratio"].isna().all() else table


def trajectory_table(results: list[BackendResult], shared: bool = True) -> pd.DataFrame:
    """Largest parameter difference between each pair of backends at each snapshot (shared mode)."""
    rows = [{"backend_a": a.backend, "backend_b": b.backend, "step": step_a,
             "max_abs_param_diff": largest_difference(pa, pb)}
            for a, b in _trained_pairs(results, shared)
            for (step_a, pa), (_, pb) in zip(a.checkpoints, b.checkpoints, strict=True)]
    return pd.DataFrame(rows, columns=KEYS["trajectory"] + ["max_abs_param_diff"])


def curve_table(results: list[BackendResult]) -> pd.DataFrame:
    rows = [{"backend": r.backend, "step": step, "epoch": epoch, "train_loss": train, "val_loss": val}
            for r in results for epoch, step, train, val in r.curve]
    return pd.DataFrame(rows, columns=["backend", "step", "epoch", "train_loss", "val_loss"])


def step_table(results: list[BackendResult]) -> pd.DataFrame:
    """Each trained backend's batch loss along its steps (up to MAX_CURVE_POINTS points, each the mean of the
    steps since the previous one) and the training seconds at each: for the per-step and wall-time plots."""
    rows = [{"backend": r.backend, "step": step, "batch_loss": loss, "seconds": seconds}
            for r in results if r.init != REFERENCE and r.curve
            for step, loss, seconds in zip(*loss_curve(r).values(), strict=True)]
    return pd.DataFrame(rows, columns=["backend", "step", "batch_loss", "seconds"])


def class_table(problem: Problem, results: list[BackendResult]) -> pd.DataFrame:
    """Per backend and class: the share of the class's rows predicted as it (recall), on each split."""
    def recall(counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # a class without rows on a split: NaN
            return np.diag(counts) / counts.sum(axis=1)

    tables = [pd.DataFrame({"backend": r.backend, "class": problem.classes,
                            "train_accuracy": recall(r.confusion["train"]), "val_accuracy": recall(r.confusion["val"]),
                            "val_rows": r.confusion["val"].sum(axis=1)}) for r in results if r.confusion]
    columns = ["backend", "class", "train_accuracy", "val_accuracy", "val_rows"]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def confusion_table(problem: Problem, results: list[BackendResult]) -> pd.DataFrame:
    """Tidy confusion matrices: a row per backend, split, true class and predicted class, with the count; up
    to CONFUSION_CLASSES classes (beyond, the per-class table is what stays readable)."""
    names = problem.classes or []
    rows = [{"backend": r.backend, "split": split, "true": names[t], "predicted": names[p], "count": int(counts[t, p])}
            for r in results for split, counts in r.confusion.items() if len(names) <= CONFUSION_CLASSES
            for t in range(len(names)) for p in range(len(names))]
    return pd.DataFrame(rows, columns=KEYS["confusion"] + ["count"])


def init_table(results: list[BackendResult]) -> pd.DataFrame:
    return pd.DataFrame([{"backend": r.backend, "initialisation and batches": r.init}
                         for r in results if r.init not in ("shared", REFERENCE, "-")],  # "-": stopped, none drawn
                        columns=KEYS["init"])


def summary_table(params: pd.DataFrame, function: pd.DataFrame, losses: pd.DataFrame,
                  reference: str | None) -> pd.DataFrame:
    """One row per backend (the reference row stays in the parameter and loss tables)."""
    accuracies = [column for column in ("train_accuracy", "val_accuracy") if column in losses]
    objective = [OBJECTIVE] if OBJECTIVE in losses else []
    summary = losses[losses["backend"] != reference].set_index("backend")[["status", "final_train_loss", *objective,
                                                                           "final_val_loss", *accuracies]]
    if "abs_error" in params:  # a model with a truth to compare with
        summary = summary.join(params.groupby("backend", sort=False)["abs_error"].max().rename("max_abs_param_error"))
    else:
        summary["max_abs_param_error"] = np.nan
    summary = summary.join(function.set_index("backend")["final_function_error"].rename("function_error"))
    timing = ["mode", "compile_seconds", "seconds", "us_per_step"]
    return summary.join(losses.set_index("backend")[timing], how="left").reset_index()


def scale_table(results: list[BackendResult]) -> pd.DataFrame:
    """The largest parameter and step loss of each trained backend: the size of the values that parity
    and error metrics compare, so `diff` knows what a rounding difference is."""
    return pd.DataFrame([{"backend": r.backend, "param_scale": largest_magnitude(r.params.values()),
                          "step_loss_scale": largest_magnitude([r.step_losses])}
                         for r in results if r.init != REFERENCE],
                        columns=["backend", "param_scale", "step_loss_scale"])


def seed_tables(problem: Problem, results: list[BackendResult], relative: bool = False,
                init: str = "shared", dtype: str | None = None, optimizer: str = "sgd",
                noise: Noise | None = None) -> dict[str, pd.DataFrame]:
    """Every table for one seed's run; parity only in shared mode, where it means something."""
    params, function = param_table(problem, results, relative), function_table(results)
    losses = loss_table(results, classify=problem.classes is not None)
    optimum = next((r for r in results if r.init == REFERENCE), None)
    shared = init == "shared"
    summary = summary_table(params, function, losses, optimum.backend if optimum else None).merge(
        scale_table(results), on="backend", how="left")
    noted = {r.backend: convergence_note(r, optimum) for r in results}
    summary.insert(2, "note", [noted.get(name, "") for name in summary["backend"]])
    return {"summary": summary, "params": params, "function": function,
            "losses": losses,
            "parity": parity_table(results, shared, dtype, optimizer, noise,
                                   tuple(layer.label for layer in problem.spec)),
            "init": init_table(results),
            "curves": curve_table(results), "trajectory": trajectory_table(results, shared),
            "steps": step_table(results), "classes": class_table(problem, results),
            "confusion": confusion_table(problem, results)}


def notes(report: dict[str, Any]) -> list[str]:
    """What the summary notes of each backend ("not converged: …") and each row of the losses notes (the
    reference without an optimum, a penalty not computed by its backend), as lines."""
    lines = [f"{row['backend']}: {row['note']}" for row in [*report["summary"], *(report.get("losses") or [])]
             if row.get("note")]
    return list(dict.fromkeys(lines))


def diverged_step(status: str) -> int | None:
    """The step a "diverged at epoch E, step S (...)" status names; None for any other status."""
    if not status.startswith("diverged") or "step " not in status:
        return None
    step = status.split("step ", 1)[1].split(" ", 1)[0].rstrip(")")
    return int(step) if step.isdecimal() else None


def parity_tolerance(report: dict[str, Any]) -> float:
    """The dtype's parity tolerance at the scale of the parameters compared: atol + rtol·(largest)."""
    tolerance = TOLERANCES[report["options"].get("precision") or report["options"]["dtype"]]
    scale = max((float(row.get("param_scale") or 0.0) for row in report["summary"]), default=0.0)
    return float(tolerance["atol"] + tolerance["rtol"] * scale)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in FRAMEWORK_PACKAGES:
        found[package] = package_version(package)
    return found


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values at full precision; NaN and ±inf as None (JSON null: strict JSON
    that every parser reads; a row's status says why a number is missing)."""
    def plain(value: Any) -> Any:
        value = value.item() if isinstance(value, np.generic) else value
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return [{str(key): plain(value) for key, value in row.items()} for row in table.astype(object).to_dict("records")]


def build_report(header: dict[str, Any], tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {"format": FORMAT_MARKER, **header, "versions": versions(), "machine": machine(),
            **{key: records(table) for key, table in tables.items()}}


# ---- rendering ----

def _text_table(rows: list[dict[str, Any]], mark_best: bool, reference: str | None) -> tuple[pd.DataFrame, bool]:
    """Numbers formatted for what they are, a metric and its `_std` shown as "mean ± std"; with
    `mark_best`, the lowest error, loss or time per column (as displayed) gets a '*': like with like, among
    the trained backends that finished (never the reference row, a diverged or a failed one), and only in
    a column whose values differ."""
    table = pd.DataFrame(rows)
    shown = pd.DataFrame(index=table.index)
    marked = False
    per_backend = "backend" in table and "parameter" not in table and table["backend"].is_unique
    contenders = pd.Series(True, index=table.index)
    if "backend" in table:
        contenders &= table["backend"] != reference
    if "status" in table:
        contenders &= table["status"].astype(str).str.fullmatch(OK)
    for column in [c for c in table.columns if not c.endswith("_std")]:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.isna().all() and table[column].notna().any():
            shown[column] = table[column]  # a text column
            continue
        fmt = number_format(column)  # the std and the '*' at the column's usual digits: rounding marks nothing
        cells = formatted(column, values)
        if f"{column}_std" in table:
            spread = pd.to_numeric(table[f"{column}_std"], errors="coerce")
            cells = [cell if pd.isna(std) or std == 0 else f"{cell} ± {fmt(float(std))}"
                     for cell, std in zip(cells, spread, strict=True)]
        candidates = values[contenders].dropna()
        displayed = {fmt(float(v)) for v in candidates}
        higher = any(word in column for word in HIGHER_IS_BETTER)
        if mark_best and per_backend and len(displayed) > 1 and (higher or any(w in column for w in LOWER_IS_BETTER)):
            best = fmt(float(candidates.max() if higher else candidates.min()))
            for index in candidates.index:
                if fmt(float(values[index])) == best:
                    cells[index] += " *"
                    marked = True
        shown[column] = cells
    return shown, marked


def header_lines(report: dict[str, Any]) -> list[str]:
    options, settings = report["options"], report["settings"]
    seeds = ("seeds " if len(report["seeds"]) > 1 else "seed ") + ",".join(map(str, report["seeds"]))
    first = (f"task {report['task']} · {seeds} · {options.get('precision') or options['dtype']} · "
             f"{options['optimizer']} lr={options['lr']:g}"
             + described(options)
             + (f" · weight decay {options['weight_decay']:g}" if options.get("weight_decay") else "")
             + f" · loss {options['loss']} · batch {settings['batch_size']} · {settings['epochs']} epochs"
             f" · init {options['init']}" + (f" · mode {options['mode']}" if options.get("mode") else ""))
    shown_elsewhere = ("seed", "epochs", "batch_size")
    task = " · ".join(f"{name} {_setting(value)}" for name, value in settings.items() if name not in shown_elsewhere)
    second = " · ".join(f"{name} {version}" for name, version in report["versions"].items())
    elsewhere = [f"{name}: {versions}" for name, versions in (report.get("environments") or {}).items()]
    lines = [first, f"{report['task']}: {task}", f"{second} · {report['machine']}", *elsewhere]
    return [part for line in lines for part in _wrapped(line)]


def _setting(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{key} {_setting(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return abbreviated([_setting(item) for item in value])
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def abbreviated(items: list[str], most: int = 8) -> str:
    """Comma-separated; a long list (a data file's thousands of columns) shows its ends and its length."""
    if len(items) <= most:
        return ",".join(items)
    return ",".join(items[: most // 2]) + ",…," + ",".join(items[-2:]) + f" ({len(items)} in all)"


def _wrapped(line: str) -> list[str]:
    """The line in pieces of at most WIDTH characters, broken between its " · " items."""
    pieces, current = [], ""
    for item in line.split(" · "):
        candidate = f"{current} · {item}" if current else item
        if current and len(candidate) > WIDTH:
            pieces.append(current + " ·")
            current = item
        else:
            current = candidate
    return [*pieces, current]


TIMING = ("compile_seconds", "seconds", "steps_per_s", "us_per_step")


def _parts(report: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each table to print with its title: the losses and the timing apart (one table would be too wide),
    the curves summarised unless every point is asked for."""
    parts = []
    for key in shown_tables(report):
        rows = report[key]
        if key == "curves" and report["options"].get("curves") != "all":
            rows = _curve_summary(rows)
        if key == "losses":
            timing = [column for column in rows[0] if column.removesuffix("_std") in TIMING]
            parts.append((TITLES[key], [{k: v for k, v in row.items() if k not in timing and k != "note"}
                                        for row in rows]))
            title = TIMING_TITLE + (f"\n(timed while {sharing(report)})" if sharing(report) else "")
            parts.append((title, [{k: v for k, v in row.items() if k in ("backend", "mode", *timing)}
                                              for row in rows if row["backend"] != report.get("reference")]))
        elif key in ("layers", "math_modes"):  # a layer (a mode) per row and a backend per column
            index, values = ("layer", "dtype") if key == "layers" else ("setting", "value")
            table = pd.DataFrame(rows)
            wide = table.pivot(index=index, columns="backend", values=values)
            wide = wide.loc[list(dict.fromkeys(table[index])), list(dict.fromkeys(table["backend"]))]
            parts.append((TITLES[key], [{index: name, **{str(k): v for k, v in row.items()}}
                                        for name, row in wide.fillna("-").iterrows()]))
        elif key == "classes":  # a class per row and a backend per column: the backends side by side
            table = pd.DataFrame(rows)
            wide = table.pivot_table(index="class", columns="backend", values="val_accuracy", sort=False,
                                     dropna=False)  # nothing held out: every accuracy NaN, shown as a dash
            wide = wide[list(dict.fromkeys(table["backend"]))].reset_index()
            wide.insert(1, "val_rows", table.groupby("class", sort=False)["val_rows"].first().to_numpy())
            wide.columns = [str(column) if column in ("class", "val_rows") else f"{column} accuracy"
                            for column in wide.columns]
            parts.append((f"Validation {TITLES[key][0].lower()}{TITLES[key][1:]}",
                          [{str(k): v for k, v in row.items()} for row in wide.to_dict("records")]))
        else:
            parts.append((TITLES[key], rows))
    return parts


def sharing(report: dict[str, Any]) -> str:
    """How the backends shared the machine while timed, "" when one trained at a time."""
    parallel = int(report["options"].get("parallel") or 1)
    if parallel < 2:
        return f"one backend trained at a time{_threads(report)}" if report["options"].get("threads") else ""
    return (f"{parallel} workers trained at once, sharing the cores{_threads(report)}: "
            "--jobs 1 times each backend alone")


def _threads(report: dict[str, Any]) -> str:
    threads = report["options"].get("threads")  # runs saved before threads were set say nothing of them
    return f", {threads} thread{'s' if threads != 1 else ''} each" if threads else ""


def _curve_summary(rows: list[dict[str, Any]], points: int = 6) -> list[dict[str, Any]]:
    """A few evenly spaced points of each backend's curve, its first and last included (--curves all: every one)."""
    table = pd.DataFrame(rows)
    kept = []
    for _, curve in table.groupby("backend", sort=False):
        chosen = sorted(set(np.linspace(0, len(curve) - 1, min(points, len(curve))).round().astype(int)))
        kept.append(curve.iloc[chosen])
    return [{str(key): value for key, value in row.items()} for row in pd.concat(kept).to_dict("records")] \
        if kept else rows


def shown_tables(report: dict[str, Any]) -> list[str]:
    """The tables printed, in order: those with rows, but not those printed only on request."""
    keys = ["params", "function", "losses", "classes", "parity", "shadow", "layers", "loss_scale", "init"] + (
        ["math_modes"] if report["options"].get("device") or report["options"].get("deterministic") else []) + (
        ["curves"] if report["options"].get("curves") else [])
    return [key for key in keys if report.get(key) and key not in report.get("on_request", ())]


def render(report: dict[str, Any], fmt: str, only: str | None = None) -> str:
    """The report in `fmt`; `only` (a table's key): that table alone, under the header."""
    if only is not None:
        rows = report.get(only) or []
        if fmt in ("json", "csv"):
            return json.dumps(rows, indent=2, allow_nan=False) + "\n" if fmt == "json" else \
                pd.DataFrame(rows).to_csv(index=False)
        report = {**report, **{key: [] for key in KEYS if key != only}, "on_request": [], "parity_verdict": None}
        if not rows:
            return "\n".join(header_lines(report)) + f"\n\nThis run saved no {TITLES[only].lower()}.\n"
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    if fmt == "csv":  # one tidy table that any CSV reader loads: a row per backend; --out writes the others
        return pd.DataFrame(report["summary"]).to_csv(index=False)
    blocks = []
    for title, rows in _parts(report):
        shown, marked = _text_table(rows, mark_best=fmt == "table", reference=report.get("reference"))
        if fmt == "markdown":
            blocks.append(f"### {title}\n\n{shown.to_markdown(index=False, stralign='right')}")
        else:
            beside = report.get("reference") in {row.get("backend") for row in rows}
            penalised = bool(rows) and OBJECTIVE in rows[0]
            optimum = " is the exact optimum" + (f" of {OBJECTIVE}" if penalised else "")
            what = (" is a baseline, the best linear model of the same inputs: the mark to beat)"
                    if report.get("baseline") else optimum + ": the mark of what is possible)")
            footnote = ("\n(* lowest in its column among the trained backends that finished"
                        + (f";\n {report['reference']}{what}" if beside else ")")) if marked else ""
            blocks.append(f"{title}\n{shown.to_string(index=False, line_width=WIDTH)}{footnote}")
        if title == TITLES["losses"] and rows and OBJECTIVE in rows[0]:
            blocks[-1] += "\n" + OBJECTIVE_MEANS
        if title == TITLES["parity"] and report.get("parity_verdict"):  # runs saved before verdicts have none
            blocks[-1] += f"\n{'**Verdict**: ' if fmt == 'markdown' else 'Verdict: '}{report['parity_verdict']['line']}"
    if notes(report):
        blocks.append("Notes\n" + "\n".join(notes(report)))
    if report["options"]["init"] != "shared":
        blocks.append(NO_PARITY)
    header = header_lines(report)
    if fmt == "markdown":
        header = [f"**{header[0]}**  ", *(f"{line}  " for line in header[1:-1]), header[-1]]
    return "\n".join(header) + "\n\n" + "\n\n".join(blocks) + "\n"
