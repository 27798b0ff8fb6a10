"""The numbers of a port check: relative differences, the tolerance a pair of float32 models is held to (calibrated
on a float64 shadow of one of them, as the suite's noise is), and which function two models apply between two
paired layers when their outputs agree and the next layer's inputs do not."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..layers.activation import FUNCTIONS, LEAKY_SLOPE

FLOAT64_TOLERANCE = 1e-9  # relative: the suite's float64 parity bar
FLOAT32_FLOOR = 1e-5  # relative: float32 pairs are never held closer than this
NOISE_MULTIPLE = 10.0  # a float32 pair may differ by this many times the shadow's own rounding error
# but never by more: where float32's rounding alone moves a chaotic training this far, no tolerance from it would
# tell a port from another model (the report says so, and that float64 is the way to compare it)
NOISE_CEILING = 1e-2
TINY = 1e-30


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| over the larger of the two's largest magnitude; inf where the shapes differ."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):  # NaN or overflow on either side is no agreement
        return float("inf")
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), TINY)
    return float(np.abs(a - b).max()) / scale


def largest(values_a: Mapping[str, np.ndarray], values_b: Mapping[str, np.ndarray]) -> tuple[float, str]:
    """The largest difference between same-named arrays relative to the largest magnitude of their layer's arrays
    (a bias before BatchNorm, whose gradient is rounding alone, is measured against its layer's weights), and the
    name."""
    scales: dict[str, float] = {}
    for name in values_a:
        layer = name.rpartition(".")[0]
        for values in (values_a, values_b):
            array = np.asarray(values.get(name, 0.0), dtype=np.float64)
            if array.size and np.isfinite(array).all():
                scales[layer] = max(scales.get(layer, 0.0), float(np.abs(array).max()))
    found = []
    for name in values_a:
        a, b = np.asarray(values_a[name], dtype=np.float64), np.asarray(values_b.get(name, np.nan), dtype=np.float64)
        if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
            found.append((relative(a, b), name))
        elif a.size:
            found.append((float(np.abs(a - b).max()) / max(scales.get(name.rpartition(".")[0], 0.0), TINY), name))
    return max(found, default=(0.0, ""))


def tolerance(dtype: str, noise: float | None, allowed: float = 0.0) -> float:
    """What a pair computing in `dtype` may differ by, given the shadow's measured rounding error (None: none) and
    the widest named allowance that concerns the pair (the suite's, backends/tolerances.py)."""
    if dtype == "float64":
        return max(FLOAT64_TOLERANCE, allowed)
    measured = noise is not None and math.isfinite(noise)  # a shadow that overflowed measured nothing
    found = max(FLOAT32_FLOOR, NOISE_MULTIPLE * noise) if measured else 10 * FLOAT32_FLOOR  # type: ignore[operator]
    return max(min(found, NOISE_CEILING), allowed)


def _candidates() -> dict[str, object]:
    found: dict[str, object] = {"nothing (identity)": lambda x: x}
    for name, function in FUNCTIONS.items():
        if name != "leaky_relu":
            found[name] = function.forward
    for slope in (LEAKY_SLOPE, 0.2, 0.3):
        found[f"leaky_relu (slope {slope})"] = (lambda s: lambda x: np.where(x > 0, x, s * x))(slope)
    return found


def applied(before: np.ndarray, after: np.ndarray, tol: float) -> str | None:
    """The element-wise function (of the activations the suite knows) that turns `before` into `after`, if one."""
    if np.shape(before) != np.shape(after):
        return None
    for name, function in _candidates().items():
        with np.errstate(all="ignore"):
            if relative(function(np.asarray(before, dtype=np.float64)), after) <= tol:  # type: ignore[operator]
                return name
    return None


def reordered(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Whether each row of b holds a's values in another order (and not in the same order)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2 or relative(a, b) <= tol:
        return False
    rows_a, rows_b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return relative(np.sort(rows_a, axis=1), np.sort(rows_b, axis=1)) <= tol
