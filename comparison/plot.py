"""Loss curves and parity over steps as a PNG (matplotlib's object API: no display, no pyplot state)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

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
    """Left: train (solid) and validation (dashed) loss per epoch, one colour per backend.
    Right, in shared mode: the largest parameter difference between each pair of backends over steps."""
    curves, trajectory = pd.DataFrame(report.get("curves") or []), pd.DataFrame(report.get("trajectory") or [])
    if curves.empty:
        raise ValueError("the report has no loss curves to plot")
    two_panels = report["options"]["init"] == "shared" and not trajectory.empty
    figure = Figure(figsize=(11 if two_panels else 6.5, 4.5), layout="constrained")
    losses = figure.add_subplot(1, 2 if two_panels else 1, 1)
    groups = list(curves.groupby("backend", sort=False))
    for rank, (backend, rows) in enumerate(groups):
        width = 1.2 + 1.6 * (len(groups) - 1 - rank)  # nested widths: identical curves stay visible
        (line,) = losses.plot(rows["epoch"], rows["train_loss"], label=backend, linewidth=width)
        losses.plot(rows["epoch"], rows["val_loss"], linestyle="--", color=line.get_color(), linewidth=width,
                    label=f"_{backend} validation")  # a leading underscore keeps it out of the legend
    losses.set(yscale="log", xlabel="epoch", ylabel=f"{report['options']['loss']} loss",
               title="loss per epoch (solid: train, dashed: validation)")
    losses.legend()
    if two_panels:
        parity = figure.add_subplot(1, 2, 2)
        pairs = list(trajectory.groupby(["backend_a", "backend_b"], sort=False))
        for rank, ((a, b), rows) in enumerate(pairs):
            parity.plot(rows["step"], np.maximum(rows["max_abs_param_diff"].astype(float), FLOOR),
                        label=f"{a} vs {b}", linewidth=1.2 + 1.6 * (len(pairs) - 1 - rank))
        parity.set(yscale="log", xlabel="optimiser step", ylabel=f"max |parameter difference| (0 drawn at {FLOOR:g})",
                   title="largest parameter difference between backends")
        parity.legend()
    options, settings = report["options"], report["settings"]
    figure.suptitle(f"{report['task']} · seed {','.join(map(str, report['seeds']))} · {options['dtype']} · "
                    f"{options['optimizer']} lr={options['lr']:g} · batch {settings['batch_size']} · "
                    f"{settings['epochs']} epochs · init {options['init']}")
    return figure
