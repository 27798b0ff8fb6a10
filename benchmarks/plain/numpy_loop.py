"""The plain NumPy loop, the yardstick of the suite's numpy backend, written by hand;
it takes nothing from the suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import LR


def plain_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
               batches: list[np.ndarray], compiled: bool = False) -> Callable[[], None]:
    """Linreg or the tanh MLP: forward, hand-derived backward and an in-place SGD update (no compiler)."""
    p = {name: value.copy() for name, value in params.items()}

    def linear() -> None:
        W, b = p["0.weight"], p["0.bias"]
        for idx in batches:
            xb, yb = X[idx], y[idx]
            err = xb @ W.T + b - yb
            float(np.mean(err * err))  # the loss a training loop reports
            g = err * (2.0 / err.size)
            W -= LR * (g.T @ xb)
            b -= LR * g.sum(axis=0)

    def mlp() -> None:
        W1, b1, W2, b2 = p["0.weight"], p["0.bias"], p["2.weight"], p["2.bias"]
        for idx in batches:
            xb, yb = X[idx], y[idx]
            h = np.tanh(xb @ W1.T + b1)
            err = h @ W2.T + b2 - yb
            float(np.mean(err * err))
            g = err * (2.0 / err.size)
            gh = (g @ W2) * (1.0 - h * h)
            W2 -= LR * (g.T @ h)
            b2 -= LR * g.sum(axis=0)
            W1 -= LR * (gh.T @ xb)
            b1 -= LR * gh.sum(axis=0)

    return linear if len(spec) == 1 else mlp
