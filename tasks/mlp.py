"""An MLP fit of a known smooth function: y = f(x) + N(0, noise²), x ~ U(-3, 3)^inputs.

MLP weights are not identifiable (hidden units can swap), so the report measures the learned
function against f on a held-out grid instead of comparing parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..layers import Layer, ModelSpec
from .base import (
    Problem,
    Task,
    assemble,
    check_dtype,
    check_layers_alone,
    check_range,
    given_or_default,
    layers_setting,
    layers_spec,
    model_spec,
    uniform_init,
)
from .options import ACTIVATION, BATCHNORM, COMMON, HIDDEN, LAYERS, N_SAMPLES, NOISE, TaskOption

FUNCTIONS = ("sin", "teacher")
LOW, HIGH = -3.0, 3.0


def true_function(name: str, inputs: int, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """`sin`: sin(Σx); `teacher`: a fixed random inputs→8→1 tanh network drawn from rng."""
    if name == "sin":
        return lambda X: np.sin(X.sum(axis=1, keepdims=True))
    w1 = rng.normal(size=(inputs, 8)) / math.sqrt(inputs)
    b1 = rng.normal(size=8)
    w2 = rng.normal(size=(8, 1)) / math.sqrt(8)
    return lambda X: np.tanh(X @ w1 + b1) @ w2


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 200,
    batch_size: int | None = 16,
    function: str = "sin",
    inputs: int = 1,
    hidden: Sequence[int] = (13,),
    activation: str = "tanh",
    batchnorm: str | None = None,
    layers: str | Sequence[Layer] | None = None,
    n_samples: int = 256,
    noise: float = 0.05,
    val_fraction: float = 0.2,
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    bias: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """The data are drawn in float64 and stored in `dtype`: the same numbers, rounded, for every dtype. `layers`
    (text or layer objects) replaces the MLP of hidden sizes."""
    if function not in FUNCTIONS:
        raise ValueError(f"function must be one of {', '.join(FUNCTIONS)}; received: {function!r}")
    if isinstance(inputs, bool) or not isinstance(inputs, int) or inputs < 1:
        raise ValueError(f"inputs must be a positive integer; received: {inputs!r}")
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0; received: {noise!r}")
    check_layers_alone(layers, batchnorm, bias)
    spec = (model_spec("mlp", inputs, 1, hidden, activation, batchnorm, bias) if layers is None
            else layers_spec(layers, (inputs,), 1))
    check_dtype(dtype)

    rng = np.random.default_rng(seed)  # the one generator: teacher, data, grid, split, init, batch order
    f = true_function(function, inputs, rng)
    X = rng.uniform(LOW, HIGH, size=(n_samples, inputs))  # (n, inputs)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by check_range, naming its cause
        y = f(X) + rng.normal(0.0, noise, size=(n_samples, 1))  # (n, 1)
    check_range("labels made by noise", y, dtype)
    X_grid = np.linspace(LOW, HIGH, 201)[:, None] if inputs == 1 else rng.uniform(LOW, HIGH, size=(512, inputs))
    return assemble(
        "mlp", rng, X.astype(dtype), y.astype(dtype), spec=spec, init=uniform_init, val_fraction=val_fraction,
        epochs=epochs, batch_size=batch_size, X_grid=X_grid, f_grid=f(X_grid), iid=True, shuffle=shuffle,
        val_rows=val_rows, init_from=init_from,
        settings={"seed": seed, "function": function, "inputs": inputs,
                  **({"hidden": list(hidden), "activation": activation} if layers is None
                     else {"layers": layers_setting(layers, spec)}), "n_samples": n_samples, "noise": noise,
                  **({"batchnorm": batchnorm} if batchnorm else {})},
    )


def data_shape(**given: Any) -> tuple[int, int]:
    return given_or_default(make_problem, given, "n_samples"), given_or_default(make_problem, given, "inputs")


def spec_for(*, layers: str | Sequence[Layer] | None = None, **given: Any) -> ModelSpec | None:
    """The model --layers writes, for the memory check (None: the MLP of --hidden)."""
    return None if layers is None else layers_spec(layers, (given_or_default(make_problem, given, "inputs"),), 1)


FUNCTION = TaskOption("function", "the true function", str, choices=FUNCTIONS)
INPUTS = TaskOption("inputs", "the number of input features", int, sweepable=True, sizes="features")

TASK = Task(
    name="mlp",
    description="MLP fit of sin(Σx) or a teacher network; error measured on a held-out grid",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 200, "batch_size": 16}},
    default_model="mlp",
    data_shape=data_shape,
    options=(FUNCTION, INPUTS, HIDDEN, ACTIVATION, BATCHNORM, LAYERS, N_SAMPLES, NOISE, *COMMON),
    spec_for=spec_for,
)
