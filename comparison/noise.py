"""The noise a correct pair can show. A float32 run's rounding error is measured against its float64 shadow:
the same backend trained in float64 on what the float32 run starts from (its data, starting parameters and
hyper-parameters rounded to float32), so the two follow one trajectory and differ by the float32 arithmetic
alone. A float64 run has no wider dtype to be shadowed in: its twin starts one unit in the last place away,
the size of one rounding, and shows how far the trajectory carries that. benchmarks/noise.py measures both
for every backend (benchmarks/NOISE.md); the parity verdicts hold a pair beyond its tolerance against them."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..backends import get_backend
from ..tasks import Problem
from .metrics import largest_difference, largest_magnitude
from .run import BackendResult, train
from .verdicts import Noise

HYPER_PARAMETERS = ("lr", "momentum", "weight_decay", "huber_delta", "label_smoothing")
MOST_VALUES = 10_000_000  # data values (every split) a run's noise is measured on at most (80 MB as a float64 shadow)


def _rounded(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def shadow_problem(problem: Problem) -> Problem:
    """The problem as a float32 run sees it, held in float64: its arrays and starting parameters rounded to
    float32, so a float64 run of it follows the float32 run's trajectory without the rounding along the way."""
    X_grid, f_grid = (None if grid is None else _rounded(grid) for grid in (problem.X_grid, problem.f_grid))
    return dataclasses.replace(
        problem, X_train=_rounded(problem.X_train), y_train=_rounded(problem.y_train), X_val=_rounded(problem.X_val),
        y_val=_rounded(problem.y_val), X_grid=X_grid, f_grid=f_grid,
        initial_params={name: _rounded(value) for name, value in problem.initial_params.items()})


def float32_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters rounded to float32, as a float32 run holds them: its shadow then uses the same ones."""
    return {key: float(np.float32(value)) if key in HYPER_PARAMETERS and value is not None else value
            for key, value in options.items()}


def twin_problem(problem: Problem) -> Problem:
    """The problem with every starting parameter one unit in the last place (of float64) higher."""
    start = {name: np.asarray(value, dtype=np.float64) for name, value in problem.initial_params.items()}
    return dataclasses.replace(problem, initial_params={name: np.nextafter(value, np.inf)
                                                        for name, value in start.items()})


def shadowed(name: str, problem: Problem, options: Mapping[str, Any],
             record: bool = False) -> tuple[BackendResult, BackendResult]:
    """Backend `name` in float32, and its float64 shadow: (float32 run, float64 run), same trajectory."""
    exact = float32_options(options)
    float32 = train(get_backend(name)(problem.spec, **{**exact, "dtype": "float32"}), problem, record=record)
    float64 = train(get_backend(name)(problem.spec, **{**exact, "dtype": "float64"}), shadow_problem(problem),
                    record=record)
    return float32, float64


def twinned(name: str, problem: Problem, options: Mapping[str, Any],
            record: bool = False) -> tuple[BackendResult, BackendResult]:
    """Backend `name` in float64 from the problem's start and from one a rounding away."""
    runs = [train(get_backend(name)(problem.spec, **{**options, "dtype": "float64"}), start, record=record)
            for start in (problem, twin_problem(problem))]
    return runs[0], runs[1]


def rounding_noise(problem: Problem, options: Mapping[str, Any], name: str = "numpy") -> tuple[BackendResult,
                                                                                                BackendResult]:
    """The two runs of `name` whose difference is the run's rounding noise at its dtype: a float32 run and its
    float64 shadow, or a float64 run and its twin."""
    return (shadowed if options["dtype"] == "float32" else twinned)(name, problem, options)


def relative_difference(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """The largest parameter difference over the largest parameter of the two."""
    return largest_difference(a, b) / largest_magnitude([*a.values(), *b.values()], math.nan)


def growth(steps: Sequence[int], differences: Sequence[float], below: float = 1e-2) -> dict[str, float]:
    """How a difference grows along the steps, fitted where it is above zero and below `below` (a difference
    near the parameters' own size has nowhere left to grow): `power`, k in d ∝ steps^k, and `per_1000_steps`,
    the factor of an exponential fit, d ∝ factor^(steps/1000)."""
    points = [(s, d) for s, d in zip(steps, differences, strict=True) if s > 0 and 0 < d < below]
    if len(points) < 3:
        return {"power": math.nan, "per_1000_steps": math.nan}
    s, d = np.log(np.array(points, dtype=float)).T
    return {"power": float(np.polyfit(s, d, 1)[0]),
            "per_1000_steps": float(np.exp(1000 * np.polyfit(np.exp(s), d, 1)[0]))}


def largest_jump(steps: Sequence[int], differences: Sequence[float]) -> tuple[float, int, int]:
    """The largest factor by which a difference grows from one snapshot to the next, and between which steps:
    where a trajectory amplifies rounding in one stretch rather than at a steady rate."""
    jumps = [(differences[i + 1] / differences[i], steps[i], steps[i + 1]) for i in range(len(steps) - 1)
             if differences[i] > 0]
    return max(jumps, default=(math.nan, 0, 0))


def data_values(problem: Problem) -> int:
    """The values of every split: what a float64 shadow of the problem copies."""
    return sum(values.size for values in (problem.X_train, problem.y_train, problem.X_val, problem.y_val))


def run_noise(problem: Problem, options: Mapping[str, Any],
              most: int = MOST_VALUES) -> Noise | None:
    """rounding_noise of numpy on the run's problem and options, trained at the first call only: a run whose
    pairs all agree within tolerance never pays for it. None for data of more than `most` values:
    a float64 shadow of those (every split: the shadow rounds them all) would take memory the run's estimate
    did not count."""
    if data_values(problem) > most:
        return None
    return functools.cache(lambda: rounding_noise(problem, {**options, "mode": "usual", "device": "cpu"}))
