"""Celsius from a thermometer in unknown units: 11 real measurements (Stevens et al., PyTorch nn).

Inputs are scaled by 0.1. The physical truth C = 5/9·(F − 32) is, on the scaled input,
w = 50/9 and b = −160/9: the reference for the linear model and the true function for both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Problem, Task, assemble, model_spec, uniform_init
from .options import ACTIVATION, COMMON, HIDDEN, MODEL

T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]
TRUE_W, TRUE_B = 50 / 9, -160 / 9


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 3000,
    batch_size: int | None = None,
    model: str = "linear",
    hidden: Sequence[int] = (13,),
    activation: str = "tanh",
    val_fraction: float = 0.2,
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    bias: bool = True,
    init_from: str | None = None,
) -> Problem:
    spec = model_spec(model, 1, 1, hidden, activation, bias=bias)
    X = 0.1 * np.array(T_U)[:, None]  # (11, 1), scaled as in the reference
    y = np.array(T_C)[:, None]
    X_grid = np.linspace(X.min(), X.max(), 101)[:, None]
    return assemble(
        "celsius", np.random.default_rng(seed), X, y, spec=spec, init=uniform_init,  # nn.Linear's default
        val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, shuffle=shuffle, init_from=init_from,
        val_rows=val_rows,
        truth={"0.weight": np.array([[TRUE_W]]), "0.bias": np.array([TRUE_B])} if model == "linear" else None,
        X_grid=X_grid, f_grid=TRUE_W * X_grid + TRUE_B,
        settings={"seed": seed, "model": model, **({"hidden": list(hidden), "activation": activation}
                                                   if model == "mlp" else {})},
    )


TASK = Task(
    name="celsius",
    description="11 real thermometer readings, linear or 1-13-1 tanh MLP (Stevens et al.)",
    make_problem=make_problem,
    defaults={"linear": {"lr": 1e-2, "epochs": 3000, "batch_size": None},
              "mlp": {"lr": 1e-3, "epochs": 5000, "batch_size": None}},
    default_model="linear",
    data_shape=lambda **given: (len(T_U), 1),
    options=(MODEL, HIDDEN, ACTIVATION, *COMMON),
)
