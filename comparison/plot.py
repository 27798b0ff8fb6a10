"""Loss curves and parity over steps as a PNG (matplotlib's object API: no display, no pyplot state)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..optimizers.training import described
from .report import diverged_step, parity_tolerance

# The figure goes to a file through the object API, so no display back-end is used; matplotlib validates
# MPLBACKEND when it is imported, and a missing or misspelt one must not stop the plot.
_display_backend = os.environ.pop("MPLBACKEND", None)
try:
    from matplotlib.figure import Figure
finally:
    if _display_backend is not None:
        os.environ["MPLBACKEND"] = _display_backend

FLOOR = 1e-18  # an exact match (difference 0) is drawn here on the log scale


def loss_figure(report: dict[str, Any]) -> Figure:
    """Left: per optimiser step, the training batches' loss (thin), the whole training split's (solid) and
    the validation split's (dashed, markers), one colour per backend; with several seeds, their mean and a
    ±1 std band; where a backend diverged, a dotted line. Right, in shared mode: the largest parameter
    difference between each pair of backends over steps, with the dtype's tolerance as a line."""
    curves, trajectory = pd.DataFrame(report.get("curves") or []), pd.DataFrame(report.get("trajectory") or [])
    steps = pd.DataFrame(report.get("steps") or [])
    if curves.empty and steps.empty:
        raise ValueError("the report has no loss curves to plot")
    two_panels = report["options"]["init"] == "shared" and not trajectory.empty
    figure = Figure(figsize=(11 if two_panels else 6.5, 4.5), layout="constrained")
    losses = figure.add_subplot(1, 2 if two_panels else 1, 1)
    backends = list(dict.fromkeys([*steps.get("backend", []), *curves.get("backend", [])]))
    status = {row["backend"]: str(row.get("status")) for row in report["summary"]}
    for rank, backend in enumerate(backends):
        width = 1.2 + 1.6 * (len(backends) - 1 - rank)  # nested widths: identical curves stay visible
        colour = f"C{rank}"
        batches = steps[steps["backend"] == backend] if not steps.empty else steps
        if not batches.empty:
            losses.plot(batches["step"], batches["batch_loss"], color=colour, linewidth=0.6, alpha=0.5,
                        label=f"_{backend} batches")  # a leading underscore keeps it out of the legend
        evaluated = curves[curves["backend"] == backend] if not curves.empty else curves
        if not evaluated.empty:
            for column, style in (("train_loss", "-"), ("val_loss", "--")):
                values = evaluated[column].astype(float)
                losses.plot(evaluated["step"], values, linestyle=style, color=colour, linewidth=width,
                            marker="o" if style == "--" else None, markersize=3,
                            label=backend if style == "-" else f"_{backend} validation")
                spread = evaluated.get(f"{column}_std")
                if spread is not None and spread.notna().any():
                    losses.fill_between(evaluated["step"], (values - spread).clip(lower=FLOOR), values + spread,
                                        color=colour, alpha=0.15)
        where = diverged_step(status.get(backend, ""))
        if where is not None:
            losses.axvline(where, color=colour, linestyle=":", linewidth=1.5)
            losses.annotate(f"{backend} diverged", (where, 0.95), xycoords=("data", "axes fraction"), color=colour,
                            fontsize="small", ha="right", rotation=90, va="top")
    losses.set(yscale="log", xlabel="optimiser step", ylabel=f"{report['options']['loss']} loss",
               title="loss (thin: batches; solid: training split; dashed: validation)")
    losses.legend()
    if two_panels:
        parity = figure.add_subplot(1, 2, 2)
        pairs = list(trajectory.groupby(["backend_a", "backend_b"], sort=False))
        for rank, ((a, b), rows) in enumerate(pairs):
            parity.plot(rows["step"], np.maximum(rows["max_abs_param_diff"].astype(float), FLOOR),
                        label=f"{a} vs {b}", linewidth=1.2 + 1.6 * (len(pairs) - 1 - rank))
        tolerance = parity_tolerance(report)
        parity.axhline(tolerance, color="black", linestyle="--", linewidth=1,
                       label=f"{report['options']['dtype']} tolerance ({tolerance:.1e})")
        parity.set(yscale="log", xlabel="optimiser step", ylabel=f"max |parameter difference| (0 drawn at {FLOOR:g})",
                   title="largest parameter difference between backends")
        parity.legend()
    options, settings = report["options"], report["settings"]
    figure.suptitle(f"{report['task']} · seed {','.join(map(str, report['seeds']))} · {options['dtype']} · "
                    f"{options['optimizer']} lr={options['lr']:g}{described(options)} · "
                    f"batch {settings['batch_size']} · "
                    f"{settings['epochs']} epochs · init {options['init']}")
    return figure
