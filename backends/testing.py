"""Comparing backends: an element-naming assert_close, assert_backends_agree for running one function on every
backend, and the check that a named allowance still holds (the table and the allowances: tolerances.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .tolerances import ALLOWANCES, TOLERANCES, Allowance, allowed_tolerance

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["ALLOWANCES", "TOLERANCES", "Allowance", "allowed_tolerance", "assert_allowance_holds",
           "assert_backends_agree", "assert_close"]

def assert_allowance_holds(compared: Mapping[str, tuple[np.ndarray, np.ndarray]], allowance: str) -> None:
    """The allowance is exact: every (actual, expected) pair lies within it, and at least one lies beyond
    the dtype's own tolerance. It fails when the difference grows past the allowance, and when it
    disappears (then the allowance is stale and should go)."""
    known = ALLOWANCES[allowance]
    for what, (actual, expected) in compared.items():
        assert_close(actual, expected, dtype=known.dtype, what=f"{what} (allowance {allowance})",
                     rtol=known.rtol, atol=known.atol)
    for actual, expected in compared.values():
        try:
            assert_close(actual, expected, dtype=known.dtype, what="")
        except AssertionError:
            return
    raise AssertionError(f"allowance {allowance!r} is no longer needed: {', '.join(compared)} agree within the "
                         f"{known.dtype} tolerance {TOLERANCES[known.dtype]}")


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
                          dtype: str = "float64", rtol: float | None = None, atol: float | None = None,
                          allow: Sequence[str] = ()) -> dict[str, Any]:
    """Run fn(BackendClass) on each backend and compare the NumPy results of every pair.

    `backends` defaults to every installed one; tolerances default to TOLERANCES[dtype], widened for a
    pair by the ALLOWANCES named in `allow` that concern it (e.g. allow=["mxnet-adam-beta2"]). Returns
    each backend's result. A failure names the two backends, the result, the element and the difference.
    """
    from . import available_backends, get_backend

    allowed_tolerance(dtype, (), allow)  # an unknown allowance is refused before anything runs
    names = list(backends) if backends is not None else available_backends()
    if len(names) < 2:
        raise ValueError(f"backends must name at least two backends to compare; received: {names}")
    made: dict[str, list[Backend]] = {name: [] for name in names}
    results = {name: fn(_recording(get_backend(name), made[name])) for name in names}
    arrays = {name: _as_arrays(value) for name, value in results.items()}
    for a, b in itertools.combinations(names, 2):
        if arrays[a].keys() != arrays[b].keys():
            raise AssertionError(f"{a} vs {b}: results differ in structure: {sorted(arrays[a])} vs {sorted(arrays[b])}")
        tolerance = allowed_tolerance(dtype, (a, b), allow)
        try:
            for key in arrays[a]:
                assert_close(arrays[b][key], arrays[a][key], dtype=dtype, what=f"{a} vs {b}, {key}",
                             rtol=tolerance["rtol"] if rtol is None else rtol,
                             atol=tolerance["atol"] if atol is None else atol)
        except AssertionError as failed:
            raise AssertionError(f"{failed}{_explained({a: made[a], b: made[b]})}") from None
    return results


def _recording(cls: type[Backend], made: list[Backend]) -> type[Backend]:
    """`cls` as fn sees it, keeping every model fn makes (to replay its training when results differ)."""
    def __init__(self: Backend, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        made.append(self)

    return type(cls.__name__, (cls,), {"__init__": __init__, "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__})


def _explained(made: dict[str, list[Backend]]) -> str:
    """Where the last models fn trained part ways (compare.py explain's finding), when both were fitted
    from their start on the same data with the same settings; nothing otherwise."""
    from types import SimpleNamespace

    from ..comparison.explain import Explainer, finding_lines
    from . import get_backend
    from .batches import shuffled_epochs

    fitted = [next((m for m in reversed(models) if m.last_fit_ is not None), None) for models in made.values()]
    if fitted[0] is None or fitted[1] is None:
        return ""
    first, second = fitted[0].last_fit_, fitted[1].last_fit_
    assert first is not None and second is not None
    data = [first["X"](), first["y"](), second["X"](), second["y"]()]
    same = all(first[key] == second[key] for key in ("epochs", "batch_size", "shuffle", "seed")) and \
        all(item is not None for item in data) and np.array_equal(data[0], data[2]) and \
        np.array_equal(data[1], data[3]) and fitted[0].options_ == fitted[1].options_ and \
        first["start"] is not None and second["start"] is not None
    if not same:
        return ""
    try:
        model_a, model_b = (get_backend(name)(m.spec, **m.options_)  # type: ignore[union-attr]
                            for name, m in zip(made, fitted, strict=True))
        X, y = model_a._check_xy(data[0], data[1])
        batches = shuffled_epochs(np.random.default_rng(first["seed"]), len(X), min(first["batch_size"], len(X)),
                                  first["epochs"], first["shuffle"])
        problem = SimpleNamespace(spec=model_a.spec, initial_params=first["start"], X_train=X, y_train=y,
                                  epoch_batches=batches)
        (finding,) = Explainer(problem, dict(zip(made, (model_a, model_b), strict=True)),  # type: ignore[arg-type]
                               fitted[0].options_).run()
    except Exception as err:  # a hook missing in a backend of one's own: say so, keep the failure
        return f"\n(explain could not replay the training: {type(err).__name__}: {err})"
    return "\nexplain: " + "\n".join(finding_lines(finding)).strip()
