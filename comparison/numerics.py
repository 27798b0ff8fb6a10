"""A reduced-precision run against the truth: its float64 shadow (NumPy by hand, in float64, from the start and
data the low-precision backends hold, on the same batches), each backend's error against it, the dtype each
layer computed in, and the loss scale's trajectory."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..backends import get_backend
from ..backends.precision import Numerics, numerics_of, numpy_dtype
from ..tasks import Problem
from .metrics import largest_magnitude
from .run import OK, REFERENCE, BackendResult, train
from .verdicts import Noise, tolerance_ratio

SHADOW = "float64 shadow"  # the shadow row's name
SHADOW_COLUMNS = ["backend", "status", "param_error", "skipped_steps", "final_train_loss", "shadow_loss", "loss_error"]


def run_numerics(options: Mapping[str, Any]) -> Numerics:
    return numerics_of(str(options.get("dtype", "float32")), options.get("precision"))


def numerics_label(options: Mapping[str, Any]) -> str:
    """What a run's tolerances are keyed by: its dtype, or its mixed precision."""
    return run_numerics(options).name


def _held(values: np.ndarray, dtype: str) -> np.ndarray:
    """Values as a backend holding them in `dtype` has them, in float64."""
    return np.asarray(values).astype(numpy_dtype(dtype)).astype(np.float64)


def shadow_problem(problem: Problem, numerics: Numerics) -> Problem:
    """The problem as the low-precision backends hold it (data and start rounded to their parameters' dtype: bfloat16
    throughout, float32 where mixed), in float64: the shadow then follows their trajectory without their arithmetic."""
    held = numerics.params
    return dataclasses.replace(
        problem, X_train=_held(problem.X_train, held), y_train=_held(problem.y_train, held),
        X_val=_held(problem.X_val, held), y_val=_held(problem.y_val, held),
        initial_params={name: _held(value, held) for name, value in problem.initial_params.items()})


def shadow_result(problem: Problem, options: Mapping[str, Any]) -> BackendResult:
    """NumPy's hand-derived passes in float64 on the shadow problem, with the run's optimiser and settings."""
    settings = {**options, "dtype": "float64", "precision": None, "mode": "usual", "device": "cpu",
                "deterministic": False}  # NumPy on the CPU, deterministic as it is
    result = train(get_backend("numpy")(problem.spec, **settings), shadow_problem(problem, run_numerics(options)))
    return dataclasses.replace(result, backend=SHADOW)


def shadow_noise(results: list[BackendResult], shadow: BackendResult) -> Noise | None:
    """The run's rounding noise at its precision, for the parity verdicts: the trained backend closest to the
    float64 shadow, and the shadow. No backend computes by hand in bfloat16 or float16 (numpy's float32 run is
    the noise at float32), so the closest is the best measure of what rounding alone does to this trajectory; a
    backend that is wrong is far from the shadow and does not set it."""
    trained = [result for result in results if result.status == OK and result.params and result.init != REFERENCE]
    closest = min(trained, key=lambda result: tolerance_ratio(result, shadow, {"rtol": 1.0, "atol": 0.0}),
                  default=None)
    if closest is None:
        return None
    return lambda: (closest, shadow)


def shadow_table(results: list[BackendResult], shadow: BackendResult) -> pd.DataFrame:
    """Each trained backend against the float64 shadow: its largest parameter error, each relative to the largest
    value of that parameter in the shadow, and its final training loss beside the shadow's."""
    rows = []
    for result in results:
        if result.init == REFERENCE or not result.params:
            continue
        errors = [float(np.max(np.abs(np.asarray(result.params[name], dtype=np.float64) - truth)))
                  / (largest_magnitude([truth], math.nan) or math.nan)
                  for name, truth in shadow.params.items() if name in result.params]
        finite = result.status == OK and all(np.isfinite(errors))
        rows.append({"backend": result.backend, "status": result.status,
                     "param_error": max(errors) if finite and errors else math.nan,
                     # a step the loss scaler skipped is one the shadow took: from it the two trajectories part
                     "skipped_steps": skipped_steps(result),
                     "final_train_loss": result.final_train_loss, "shadow_loss": shadow.final_train_loss,
                     "loss_error": abs(result.final_train_loss - shadow.final_train_loss) / abs(shadow.final_train_loss)
                     if shadow.final_train_loss else math.nan})
    return pd.DataFrame(rows, columns=SHADOW_COLUMNS)


def skipped_steps(result: BackendResult) -> int:
    """The steps the loss scaler skipped: each halved the scale (a fall between two of its recorded changes)."""
    return sum(after < before for (_, before), (_, after) in itertools.pairwise(result.loss_scales))


def unseeded(layer: Any) -> Any:
    """The layer without the seed a task drew for its masks (a dropout layer's differs from seed to seed)."""
    return dataclasses.replace(layer, seed=None) if getattr(layer, "seed", None) is not None else layer


def layer_table(problem: Problem, results: list[BackendResult]) -> pd.DataFrame:
    """The dtype each layer's output had in each backend (its framework's policy deciding), and the parameters'."""
    rows = []
    for result in results:
        if not result.computed_in:
            continue
        rows.append({"backend": result.backend, "layer": "parameters", "dtype": result.params_dtype})
        rows += [{"backend": result.backend, "layer": f"{index} {unseeded(layer).describe()}", "dtype": dtype}
                 for index, (layer, dtype) in enumerate(zip(problem.spec, result.computed_in, strict=True))]
    return pd.DataFrame(rows, columns=["backend", "layer", "dtype"])


def loss_scale_table(results: list[BackendResult]) -> pd.DataFrame:
    """Each float16 backend's loss scale: where it started and ended, its lowest, and the steps skipped (each fall:
    a gradient that overflowed), with the trajectory as its changes, STEP:SCALE."""
    rows = []
    for result in results:
        if not result.loss_scales:
            continue
        values = [scale for _, scale in result.loss_scales]
        rows.append({"backend": result.backend, "initial_scale": values[0], "final_scale": values[-1],
                     "lowest_scale": min(values), "skipped_steps": skipped_steps(result),
                     "changes": " ".join(f"{step}:{scale:g}" for step, scale in result.loss_scales[1:]) or "none"})
    return pd.DataFrame(rows, columns=["backend", "initial_scale", "final_scale", "lowest_scale", "skipped_steps",
                                       "changes"])


def modes_table(results: list[BackendResult]) -> pd.DataFrame:
    """Each backend's device and the math modes its framework had in force (TF32, determinism, autotuning)."""
    return pd.DataFrame([{"backend": result.backend, "setting": setting, "value": value}
                         for result in results for setting, value in result.math_modes.items()],
                        columns=["backend", "setting", "value"])


def numerics_tables(problem: Problem, results: list[BackendResult], shadow: BackendResult | None) -> dict[str,
                                                                                                      pd.DataFrame]:
    """The tables of how the backends computed: a reduced-precision run's three (empty for any other) and the math
    modes."""
    return {"shadow": shadow_table(results, shadow) if shadow is not None else pd.DataFrame(columns=SHADOW_COLUMNS),
            "layers": layer_table(problem, results), "loss_scale": loss_scale_table(results),
            "math_modes": modes_table(results)}
