"""A sweep's figures (matplotlib's object API, no display): final loss against a setting with 95 % bands,
parity to the reference across the grid, per-step time with intervals, and the loss curves of one point
against steps and against wall time."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from .plot import Figure
from .sweep import LOG_X, RATIO_FLOOR, X_SETTINGS, parity_grid, ratio_text, task_settings, varying

MOST_PANELS = 12


def _width(rank: int, count: int) -> float:
    """Nested line widths, the first backend's widest: lines that coincide stay visible."""
    return 1.2 + 1.6 * (count - 1 - rank)


def _spans_decades(values: pd.Series) -> bool:
    """Positive values a factor of 10 or more apart: drawn on a log axis."""
    numbers = pd.to_numeric(values, errors="coerce")
    return bool(numbers.min() > 0 and numbers.max() >= 10 * numbers.min())


def loss_figure(summary: pd.DataFrame, settings: list[str], title: str) -> tuple[str, Figure]:
    """Final validation loss (mean over seeds, 95 % band) against the first numeric setting that varies,
    one panel per value of the others; its file name."""
    changing = varying(summary, settings)
    x = next((name for name in (*X_SETTINGS, *task_settings()) if name in changing), None)
    others = [name for name in changing if name != x]
    panels = list(summary.groupby(others, sort=False, dropna=False)) if others else [((), summary)]
    panels = panels[:MOST_PANELS]
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.6 * columns, 3.6 * rows + 0.6), layout="constrained")
    for index, (keys, table) in enumerate(panels, start=1):
        axes = figure.add_subplot(rows, columns, index)
        groups = list(table.groupby("backend", sort=False))
        for rank, (backend, lines) in enumerate(groups):
            lines = lines.sort_values(x) if x else lines
            where = lines[x].astype(float).to_numpy() if x else np.arange(len(lines))
            (line,) = axes.plot(where, lines["final_val_loss_mean"], marker="o", label=backend,
                                linewidth=_width(rank, len(groups)), markersize=3 + 2.5 * (len(groups) - 1 - rank))
            axes.fill_between(where, lines["final_val_loss_ci_low"].astype(float),
                              lines["final_val_loss_ci_high"].astype(float), color=line.get_color(), alpha=0.2)
        if x in LOG_X or (x in task_settings() and _spans_decades(summary[x])):
            axes.set_xscale("log")
        keys = keys if isinstance(keys, tuple) else (keys,)
        axes.set(yscale="log", xlabel=x or "grid point", ylabel="final validation loss",
                 title=" ".join(f"{name}={value}" for name, value in zip(others, keys, strict=False)) or None)
        axes.legend(fontsize="small")
    figure.suptitle(f"{title}: mean over seeds, band = bootstrap 95 % interval")
    return f"loss_vs_{x or 'point'}.png", figure


def parity_figure(jobs: pd.DataFrame, settings: list[str], reference: str, title: str, dtype: str) -> Figure:
    """The largest parameter difference from the reference backend over seeds, per grid point and backend, in
    multiples of the pair's tolerance: on a log scale whose middle, 1×, is the tolerance (blue within it, red
    beyond); an exact match drawn at RATIO_FLOOR."""
    from matplotlib.colors import TwoSlopeNorm

    grid = parity_grid(jobs, varying(jobs, settings), reference, dtype)
    rows, columns = grid.ratios.shape
    norm = TwoSlopeNorm(vmin=math.log10(RATIO_FLOOR), vcenter=0.0, vmax=grid.top)
    figure = Figure(figsize=(max(6.4, 3.2 + 1.3 * columns), 1.8 + 0.35 * rows), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(grid.shades, aspect="auto", cmap="coolwarm", norm=norm)
    axes.set_xticks(range(columns), grid.backends)
    axes.set_yticks(range(rows), grid.labels, fontsize="small")
    for (i, j), ratio in np.ndenumerate(grid.ratios):
        shade = float(norm(grid.shades[i, j])) if math.isfinite(grid.shades[i, j]) else 0.5
        axes.text(j, i, ratio_text(ratio), ha="center", va="center", fontsize="x-small",
                  color="white" if abs(shade - 0.5) > 0.35 else "black")
    ticks = grid.ticks
    bar = figure.colorbar(image, ax=axes, ticks=ticks, label="largest difference ÷ tolerance")
    bar.ax.set_yticklabels([("≤ " if tick == ticks[0] else "") + f"{10.0 ** tick:g}×"
                            + (" (the tolerance)" if tick == 0 else "") for tick in ticks])
    bar.ax.axhline(0.0, color="black", linewidth=1.5)
    wrapped = textwrap.fill(f"{title}: largest |parameter − {reference}'s| over seeds, in multiples of the "
                            f"pair's tolerance (atol + rtol · its largest parameter; 0 drawn at "
                            f"{RATIO_FLOOR:g}×)", width=int(figure.get_figwidth() * 11))
    axes.set_title(wrapped, fontsize="medium")  # wrapped to the figure's width: none of it cut off
    return figure


def time_figure(summary: pd.DataFrame, settings: list[str], title: str) -> Figure:
    """Per-step time (mean over seeds, 95 % interval) per backend at each grid point."""
    changing = varying(summary, settings)
    points = list(summary.groupby(changing, sort=False, dropna=False)) if changing else [((), summary)]
    backends = list(dict.fromkeys(summary["backend"]))
    figure = Figure(figsize=(max(6.0, 0.5 + 0.35 * len(points) * len(backends)), 4.2), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(backends)
    for rank, backend in enumerate(backends):
        where, mean, low, high = [], [], [], []
        for index, (_, rows) in enumerate(points):
            row = rows[rows["backend"] == backend]
            if len(row):
                where.append(index + (rank - (len(backends) - 1) / 2) * width)
                mean.append(float(row["us_per_step_mean"].iloc[0]))
                low.append(float(row["us_per_step_ci_low"].iloc[0]))
                high.append(float(row["us_per_step_ci_high"].iloc[0]))
        mean_a, low_a, high_a = (np.asarray(v, dtype=float) for v in (mean, low, high))
        spread = np.nan_to_num(np.vstack([mean_a - low_a, high_a - mean_a]), nan=0.0)
        axes.bar(where, mean_a, width=width, yerr=spread, capsize=3, label=backend)
    axes.set_xticks(range(len(points)), [" ".join(f"{n}={v}" for n, v in zip(changing, key if isinstance(
        key, tuple) else (key,), strict=False)) or "all" for key, _ in points], rotation=30, ha="right",
        fontsize="small")
    axes.set(yscale="log", ylabel="µs per steady step", title=f"{title}: per-step time, bars = 95 % interval")
    axes.legend(fontsize="small")
    return figure


def curves_figure(curves: dict[str, dict[str, list[float]]], label: str) -> Figure:
    """One job per backend: the loss against optimiser steps, and against seconds of training."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    by_step, by_time = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for rank, (backend, curve) in enumerate(curves.items()):
        (line,) = by_step.plot(curve["step"], curve["loss"], label=backend, linewidth=_width(rank, len(curves)))
        by_time.plot(curve["seconds"], curve["loss"], color=line.get_color(), label=backend)
    by_step.set(yscale="log", xlabel="optimiser step", ylabel="batch loss (mean since the previous point)")
    by_time.set(yscale="log", xlabel="seconds of training (compiling included)", ylabel="batch loss")
    for axes in (by_step, by_time):
        axes.legend(fontsize="small")
    figure.suptitle(f"loss curves at {label}")
    return figure
