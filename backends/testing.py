"""Comparing backends: an element-naming assert_close, assert_backends_agree for running one function on every
backend, and the check that a named allowance still holds (the table and the allowances: tolerances.py)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .tolerances import ALLOWANCES, TOLERANCES, Allowance, allowed_tolerance, concerning

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["ALLOWANCES", "TOLERANCES", "Allowance", "ParityWithinNoise", "allowed_tolerance",
           "assert_allowance_holds", "assert_backends_agree", "assert_close", "tolerance_multiple"]

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
    each backend's result. A pair beyond its tolerance fails with its verdict, as a run words it: how many
    times the tolerance and, when fn trained both from the same start on the same data, against the
    rounding noise of that training (numpy against its float64 shadow or twin, on the parameters); a pair
    within that noise passes with a ParityWithinNoise warning, as `compare.py --check` passes it. A failure
    names the two backends, the result, the element and the difference.
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
        tolerance = {"rtol": tolerance["rtol"] if rtol is None else rtol,
                     "atol": tolerance["atol"] if atol is None else atol}
        try:
            for key in arrays[a]:
                assert_close(arrays[b][key], arrays[a][key], dtype=dtype, what=f"{a} vs {b}, {key}", **tolerance)
        except AssertionError as failed:
            pair = {a: made[a], b: made[b]}
            ratio = max(tolerance_multiple(arrays[b][key], arrays[a][key], **tolerance) for key in arrays[a])
            verdict, passes = _verdict(ratio, _noise_multiple(pair, tolerance))
            held_to = " + ".join([dtype, *concerning(dtype, (a, b), allow)])
            if passes:
                warnings.warn(f"{a} vs {b}: {verdict} (held to {held_to}): beyond the tolerance, within what "
                              "rounding does to this training", ParityWithinNoise, stacklevel=2)
                continue
            raise AssertionError(f"{failed}\nverdict: {verdict} (held to {held_to}){_explained(pair)}") from None
    return results


class ParityWithinNoise(UserWarning):
    """Two backends beyond their tolerance, within the rounding noise of the training that made their results."""


def tolerance_multiple(actual: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> float:
    """How many times assert_close's tolerance the worst element differs by (inf where one is NaN)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return math.inf
    if not actual.size:
        return 0.0
    excess = np.abs(actual - expected) / (atol + rtol * np.abs(expected))
    return float(np.max(np.where(np.isnan(excess), np.inf, excess)))


def _verdict(ratio: float, noise: float | None) -> tuple[str, bool]:
    """The pair's verdict in a run's words, and whether it passes (beyond tolerance, within the noise)."""
    from ..comparison.verdicts import verdict_words, within_noise

    measured = math.nan if noise is None else noise
    return verdict_words(ratio, measured), within_noise(ratio, measured)


def _replayable(made: dict[str, list[Backend]]) -> tuple[Any, list[Backend]] | None:
    """The problem the last models fn trained were fitted on (both from their start, on the same data with
    the same settings), and those models; None otherwise."""
    from ..tasks import Problem
    from .batches import shuffled_epochs

    fitted = [next((m for m in reversed(models) if m.last_fit_ is not None), None) for models in made.values()]
    if fitted[0] is None or fitted[1] is None:
        return None
    first, second = fitted[0].last_fit_, fitted[1].last_fit_
    assert first is not None and second is not None
    data = [first["X"](), first["y"](), second["X"](), second["y"]()]
    same = all(first[key] == second[key] for key in ("epochs", "batch_size", "shuffle", "seed")) and \
        all(item is not None for item in data) and np.array_equal(data[0], data[2]) and \
        np.array_equal(data[1], data[3]) and fitted[0].options_ == fitted[1].options_ and \
        first["start"] is not None and second["start"] is not None
    if not same:
        return None
    X, y = fitted[0]._check_xy(data[0], data[1])
    batches = shuffled_epochs(np.random.default_rng(first["seed"]), len(X), min(first["batch_size"], len(X)),
                              first["epochs"], first["shuffle"])
    problem = Problem(task="yours", spec=fitted[0].spec, X_train=X, y_train=y, X_val=X[:0], y_val=y[:0],
                      initial_params=first["start"], epoch_batches=batches, truth=None, shuffle=first["shuffle"])
    return problem, [fitted[0], fitted[1]]


def _noise_multiple(made: dict[str, list[Backend]], tolerance: Mapping[str, float]) -> float | None:
    """The rounding noise of the training fn did, in multiples of the pair's tolerance, on the parameters;
    None when it was not a replayable training, or the noise could not be trained."""
    from ..comparison.noise import MOST_VALUES, rounding_noise

    found = _replayable(made)
    if found is None or found[0].X_train.size + found[0].y_train.size > MOST_VALUES:
        return None
    problem, models = found
    try:
        runs = rounding_noise(problem, {**models[0].options_, "mode": "usual"})
    except Exception:  # a spec or option numpy cannot train: no noise to hold the pair against
        return None
    if any(run.status != "ok" for run in runs):
        return None
    return max((tolerance_multiple(runs[1].params[name], runs[0].params[name], **tolerance)
                for name in runs[0].params), default=0.0)


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
    from ..comparison.explain import Explainer, finding_lines
    from . import get_backend

    found = _replayable(made)
    if found is None:
        return ""
    problem, fitted = found
    try:
        model_a, model_b = (get_backend(name)(m.spec, **m.options_)  # type: ignore[arg-type]
                            for name, m in zip(made, fitted, strict=True))
        (finding,) = Explainer(problem, dict(zip(made, (model_a, model_b), strict=True)), fitted[0].options_).run()
    except Exception as err:  # a hook missing in a backend of one's own: say so, keep the failure
        return f"\n(explain could not replay the training: {type(err).__name__}: {err})"
    return "\nexplain: " + "\n".join(finding_lines(finding)).strip()
