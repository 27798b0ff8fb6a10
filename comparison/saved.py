"""Saved runs: a directory with results.json, each table as CSV, a Markdown report and the plot.

Every file is written under a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from comparison.report import render, shown_tables

RESULTS = "results.json"
PLOT = "loss_curves.png"
# Metrics where a rise is a regression; timing is reported but never gates.
GATED = ("final_train_loss", "final_val_loss", "max_abs_param_error", "function_error",
         "max_abs_param_diff", "max_abs_step_loss_diff")
INFORMATIONAL = ("seconds", "us_per_step")


def prepare_out(path: str) -> Path:
    """Create the directory and prove it writable before any training starts."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as err:
        raise ValueError(f"--out {path!r} cannot be written: {err.strerror or err}") from None
    return out


def check_writable_file(option: str, path: str) -> None:
    """The file's folder exists and takes a new file (checked before training, so nothing is lost)."""
    folder = Path(path).resolve().parent
    if Path(path).is_dir():
        raise ValueError(f"{option} {path!r} is a directory; give a file name")
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"{option} {path!r} cannot be written: {err.strerror or err}") from None


def write_atomic(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def figure_png(figure: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def save_run(out: Path, report: dict[str, Any], plot_png: bytes | None) -> None:
    for key in ["summary", *shown_tables(report)]:
        write_atomic(out / f"{key}.csv", pd.DataFrame(report[key]).to_csv(index=False).encode())
    write_atomic(out / "report.md", render(report, "markdown").encode())
    if plot_png is not None:
        write_atomic(out / PLOT, plot_png)
    write_atomic(out / RESULTS, render(report, "json").encode())  # last: its presence marks a complete run


def load_run(path: str) -> dict[str, Any]:
    results = Path(path) / RESULTS
    try:
        report = json.loads(results.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path!r} is not a saved run: it has no {RESULTS}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(results)!r} cannot be read: {err}") from None
    if not isinstance(report, dict) or "summary" not in report:
        raise ValueError(f"{str(results)!r} is not a backend-compare results file")
    return report


def _metrics(report: dict[str, Any]) -> dict[tuple[str, str], float]:
    values = {}
    for row in report.get("summary", []):
        for metric in GATED + INFORMATIONAL:
            if row.get(metric) is not None:
                values[(row["backend"], metric)] = float(row[metric])
    for row in report.get("parity", []):
        for metric in ("max_abs_param_diff", "max_abs_step_loss_diff"):
            if row.get(metric) is not None:
                values[(f"{row['backend_a']} vs {row['backend_b']}", metric)] = float(row[metric])
    return values


def diff_runs(old: dict[str, Any], new: dict[str, Any], threshold: float, atol: float) -> pd.DataFrame:
    """Per backend (or pair) and metric: old, new, relative change and a verdict.
    `worse` means new > old·(1 + threshold) + atol on a gated metric."""
    before, after = _metrics(old), _metrics(new)
    rows = []
    for subject, metric in list(before) + [key for key in after if key not in before]:
        a, b = before.get((subject, metric)), after.get((subject, metric))
        if a is None or b is None:
            verdict = "only in A" if b is None else "only in B"
            change = math.nan
        else:
            change = (b - a) / abs(a) if a else (0.0 if b == a else math.inf)
            if metric in INFORMATIONAL:
                verdict = "timing"
            elif b > a * (1 + threshold) + atol:
                verdict = "WORSE"
            elif b < a * (1 - threshold) - atol:
                verdict = "better"
            else:
                verdict = "same"
        rows.append({"backend": subject, "metric": metric, "A": a, "B": b, "change": change, "verdict": verdict})
    return pd.DataFrame(rows, columns=["backend", "metric", "A", "B", "change", "verdict"])
