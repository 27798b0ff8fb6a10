"""Comparing backends: one tolerance table keyed by dtype (rtol and atol always together), an
element-naming assert_close, and assert_backends_agree for running one function on every backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from backends.base import Backend

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


def _as_arrays(value: Any) -> dict[str, np.ndarray]:
    """A function's result as named arrays: a dict keeps its keys, a tuple or list is numbered."""
    if isinstance(value, Mapping):
        return {str(key): np.asarray(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return {f"[{index}]": np.asarray(item) for index, item in enumerate(value)}
    return {"result": np.asarray(value)}


def assert_backends_agree(fn: Callable[[type[Backend]], Any], *, backends: Sequence[str] | None = None,
                          dtype: str = "float64", rtol: float | None = None,
                          atol: float | None = None) -> dict[str, Any]:
    """Run fn(BackendClass) on each backend and compare the NumPy results of every pair.

    `backends` defaults to every installed one; tolerances default to TOLERANCES[dtype]. Returns each
    backend's result. A failure names the two backends, the result, the element and the difference.
    """
    from backends import available_backends, get_backend

    names = list(backends) if backends is not None else available_backends()
    if len(names) < 2:
        raise ValueError(f"backends must name at least two backends to compare; received: {names}")
    results = {name: fn(get_backend(name)) for name in names}
    arrays = {name: _as_arrays(value) for name, value in results.items()}
    for a, b in itertools.combinations(names, 2):
        if arrays[a].keys() != arrays[b].keys():
            raise AssertionError(f"{a} vs {b}: results differ in structure: {sorted(arrays[a])} vs {sorted(arrays[b])}")
        for key in arrays[a]:
            assert_close(arrays[b][key], arrays[a][key], dtype=dtype, what=f"{a} vs {b}, {key}", rtol=rtol, atol=atol)
    return results
