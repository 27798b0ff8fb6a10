"""Comparing backends: one tolerance table keyed by dtype (rtol and atol always together), an
element-naming assert_close, assert_backends_agree for running one function on every backend, and
the named allowances: framework differences that cannot be aligned, measured and bounded."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .base import Backend

TOLERANCES = {
    "float32": {"rtol": 1e-4, "atol": 1e-6},
    "float64": {"rtol": 1e-9, "atol": 1e-12},
}


@dataclass(frozen=True)
class Allowance:
    """A known difference between one backend and the others that no setting removes: where it comes
    from, when it applies, and the tolerance that bounds it (measured with margin)."""

    name: str
    backend: str
    dtype: str
    rtol: float
    atol: float
    cause: str


ALLOWANCES = {allowance.name: allowance for allowance in (
    Allowance("mxnet-float32-hyperparameters", "mxnet", "float64", rtol=1e-6, atol=1e-12,
              cause="MXNet's optimiser ops take lr, wd, momentum and rescale_grad (1/batch_size) as 32-bit C "
                    "floats even for float64 weights (struct SGDParam { float lr; ... }), so a learning rate "
                    "or batch size not exact in 32 bits moves its float64 trajectory by ~1e-7 relative "
                    "(measured 1.4e-7 at lr 0.03, batch 10)"),
    Allowance("mxnet-adam-beta2", "mxnet", "float64", rtol=1e-3, atol=1e-5,
              cause="MXNet's adam_update takes beta2 as a 32-bit float: 0.999 becomes 0.99900001287, so "
                    "(1 - beta2) is 1.3e-5 relative too small while its bias correction uses the exact "
                    "0.999; measured up to 1.8e-4 absolute, 8.8e-4 relative on values below 1e-5"),
    Allowance("keras-adam-float32-beta2", "tensorflow", "float32", rtol=1e-3, atol=1e-5,
              cause="Keras's Adam computes its bias correction 1 - beta2**t in the weights' dtype, so a float32 "
                    "model's uses beta2 = 0.99900001287, 1.3e-5 relative too far from 1 at first; MXNet's "
                    "adam_update rounds beta2 the other way (in the moment update, its bias correction exact). "
                    "Each stays within float32's tolerance of numpy, torch and jax (at most 0.60 of it), but "
                    "between the two the errors add: measured 1.03 of the tolerance on the mlp with mse, "
                    "1.1e-5 absolute, 5.9e-4 relative on a parameter near 0.014; on the iris MLP classifier "
                    "(cross-entropy) it reaches 1.44-1.50 of the tolerance against numpy, torch and jax alone, "
                    "3.0 against mxnet (6.0e-6 absolute)"),
    Allowance("mxnet-adam-float32-beta2", "mxnet", "float32", rtol=1e-3, atol=1e-5,
              cause="MXNet's adam_update rounds beta2 to float32 (0.99900001287) in the second-moment update while "
                    "its bias correction uses the exact 0.999 (the float64 allowance mxnet-adam-beta2, at float32): "
                    "within float32's tolerance on the regressions, but on the iris MLP classifier (cross-entropy, "
                    "gradients of a few 1e-3) it reaches 1.54-1.60 of it against numpy, torch and jax (3.1e-6 "
                    "absolute on a bias near 0.0096)"),
)}


def allowed_tolerance(dtype: str, pair: Iterable[str], allow: Iterable[str]) -> dict[str, float]:
    """rtol and atol for comparing a pair of backends: the dtype's, widened by every allowance in
    `allow` that concerns one of the two backends at this dtype."""
    tolerance = dict(TOLERANCES[dtype])
    names = set(pair)
    for name in allow:
        if name not in ALLOWANCES:
            raise ValueError(f"allow must name allowances from {', '.join(ALLOWANCES)}; received: {name!r}")
        allowance = ALLOWANCES[name]
        if allowance.backend in names and allowance.dtype == dtype:
            tolerance = {"rtol": max(tolerance["rtol"], allowance.rtol), "atol": max(tolerance["atol"], allowance.atol)}
    return tolerance


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

    from ..comparison.explain import Explainer, _line
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
    return "\nexplain: " + "\n".join(_line(finding)).strip()
