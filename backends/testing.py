"""Tolerances for comparing backends, one table keyed by dtype (rtol and atol always together)."""

from __future__ import annotations

import numpy as np

TOLERANCES = {
    "float32": {"rtol": 1e-4, "atol": 1e-6},
    "float64": {"rtol": 1e-9, "atol": 1e-12},
}


def assert_close(actual: np.ndarray, expected: np.ndarray, *, dtype: str, what: str,
                 rtol: float | None = None, atol: float | None = None) -> None:
    """assert_allclose with the dtype's tolerances; the message names `what` and the worst element."""
    tolerance = TOLERANCES[dtype]
    rtol = tolerance["rtol"] if rtol is None else rtol
    atol = tolerance["atol"] if atol is None else atol
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shapes differ, {actual.shape} vs {expected.shape}")
    excess = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    if (excess > 0).any() or np.isnan(excess).any():
        worst = np.unravel_index(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)), excess.shape)
        raise AssertionError(
            f"{what}: {int((excess > 0).sum() + np.isnan(excess).sum())} of {excess.size} elements differ "
            f"beyond rtol={rtol:g}, atol={atol:g}; worst at index {tuple(int(i) for i in worst)}: "
            f"{actual[worst]!r} vs {expected[worst]!r} (abs diff {abs(actual[worst] - expected[worst]):.3g})"
        )
