"""Your own data: `--data FILE` fitted by a linear model or an MLP, with a seeded validation split."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..backends.losses import BINARY_LOSSES, REGRESSION_LOSSES
from .base import Problem, Task, assemble, check_dtype, check_range, model_spec, uniform_init
from .datafile import data_shape, load_table
from .options import ACTIVATION, COMMON, DATA, HEADER, HIDDEN, MODEL, STANDARDIZE, TARGET


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
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    bias: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
    target: str | None = None,
    header: bool | None = None,
    standardize: bool = False,
) -> Problem:
    """`target`: the CSV column to predict (a name, or a position; default the last); `header`: whether the
    first line names the columns (default: when it is not all numbers); `standardize`: scale each feature
    by the training split's mean and standard deviation (reported in the settings)."""
    spec = model_spec(model, 1, 1, hidden, activation)  # checks model and sizes before reading the file
    check_dtype(dtype)
    table = load_table(data, target, header)
    X, y = table.X, table.y
    for what, values in (("features", X), ("targets", y)):
        check_range(f"{what} in data file {str(data)!r}", values, dtype)
    spec = model_spec(model, X.shape[1], 1, hidden, activation, bias=bias)
    problem = assemble(
        "data", np.random.default_rng(seed), X, y, spec=spec, init=uniform_init, val_fraction=val_fraction,
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, init_from=init_from,
        val_rows=val_rows,
        settings={"seed": seed, "data": str(data), "rows": len(X), "features": X.shape[1], "model": model,
                  "columns": table.features, "target": table.target, "header": table.header,
                  **({"hidden": list(hidden), "activation": activation} if model == "mlp" else {})},
    )
    return standardized(problem) if standardize else problem


def standardized(problem: Problem) -> Problem:
    """Features scaled by the training split's statistics (a constant feature is only centred), applied to
    both splits; the statistics go into the settings."""
    mean = problem.X_train.mean(axis=0)
    std = problem.X_train.std(axis=0)
    scale = np.where(std > 0, std, 1.0)
    return dataclasses.replace(problem, X_train=(problem.X_train - mean) / scale, X_val=(problem.X_val - mean) / scale,
                               settings={**problem.settings, "standardized": {"mean": mean.tolist(),
                                                                              "std": scale.tolist()}})


TASK = Task(
    name="data",
    description="your own CSV (a header or none; --target picks the label, default the last column) or .npz (X, y)",
    make_problem=make_problem,
    defaults={"linear": {"lr": 0.01, "epochs": 100, "batch_size": 32},
              "mlp": {"lr": 0.01, "epochs": 100, "batch_size": 32}},
    default_model="linear",
    losses=(*REGRESSION_LOSSES, *BINARY_LOSSES),  # bce-with-logits: a target column of 0 and 1
    data_shape=lambda *, data, **given: data_shape(data),
    options=(DATA, MODEL, HIDDEN, ACTIVATION, TARGET, HEADER, STANDARDIZE, *COMMON),
)
