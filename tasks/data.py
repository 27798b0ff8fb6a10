"""Your own data: `--data FILE` fitted by a linear model or an MLP, with a seeded validation split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Problem, Task, assemble, check_dtype, check_range, model_spec, uniform_init
from .datafile import data_shape, load_xy


def make_problem(
    *,
    data: str,
    seed: int = 0,
    epochs: int = 100,
    batch_size: int | None = 32,
    model: str = "linear",
    hidden: Sequence[int] = (13,),
    activation: str = "tanh",
    val_fraction: float = 0.2,
    dtype: str = "float64",
) -> Problem:
    spec = model_spec(model, 1, 1, hidden, activation)  # checks model and sizes before reading the file
    check_dtype(dtype)
    X, y = load_xy(data)
    for what, values in (("features", X), ("targets", y)):
        check_range(f"{what} in data file {str(data)!r}", values, dtype)
    spec = model_spec(model, X.shape[1], 1, hidden, activation)
    return assemble(
        "data", np.random.default_rng(seed), X, y, spec=spec, init=uniform_init, val_fraction=val_fraction,
        epochs=epochs, batch_size=batch_size,
        settings={"seed": seed, "data": str(data), "rows": len(X), "features": X.shape[1], "model": model,
                  **({"hidden": list(hidden), "activation": activation} if model == "mlp" else {})},
    )


TASK = Task(
    name="data",
    description="your own CSV (header, last column the target) or .npz (X, y)",
    make_problem=make_problem,
    defaults={"linear": {"lr": 0.01, "epochs": 100, "batch_size": 32},
              "mlp": {"lr": 0.01, "epochs": 100, "batch_size": 32}},
    default_model="linear",
    data_shape=lambda *, data, **given: data_shape(data),
)
