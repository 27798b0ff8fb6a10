"""The numbers every table, sweep, page and explain reads from a result, each computed here once: time per
step, errors against the truth, differences between two backends, accuracy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .run import BackendResult


def us_per_step(result: BackendResult) -> float:
    """Microseconds per steady step (the first step at each batch size, where compilers work, left out)."""
    steady = result.steady_steps
    return 1e6 * result.seconds / steady if steady else math.nan


def steps_per_second(result: BackendResult) -> float:
    steady = result.steady_steps
    return steady / result.seconds if steady and result.seconds > 0 else math.nan


def largest_magnitude(values: Iterable[np.ndarray], empty: float = math.nan) -> float:
    """The largest finite |value| over every element of the arrays; `empty` when there is none."""
    flat = [np.abs(v[np.isfinite(v)]) for v in (np.ravel(value) for value in values)]
    return max((float(v.max()) for v in flat if v.size), default=empty)


def largest_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """The largest absolute difference over every element of the arrays both name; NaN when none is shared."""
    common = [name for name in a if name in b]
    if not common:
        return math.nan
    return max(float(np.max(np.abs(np.asarray(a[name]) - np.asarray(b[name])))) for name in common)


def step_loss_difference(a: BackendResult, b: BackendResult) -> float:
    """The largest difference between two backends' losses at the same step."""
    return float(np.max(np.abs(a.step_losses - b.step_losses)))


def accuracy(counts: np.ndarray | None) -> float:
    """The share of rows on the diagonal of a confusion matrix; NaN without one."""
    return float(np.trace(counts) / counts.sum()) if counts is not None and counts.sum() else math.nan
