"""Linear regression with known weights: y = X·true_w + true_b + N(0, noise²).

Defaults are the Gluon "concise implementation" of Dive into Deep Learning §3.3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from ..layers import Linear, make_spec
from .base import (
    DRAW_ROWS_BYTES,
    Problem,
    Task,
    assemble,
    check_dtype,
    check_range,
    check_split,
    given_or_default,
    normal_init,
)
from .options import COMMON, N_SAMPLES, NOISE, TaskOption, floats


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 3,
    batch_size: int | None = 10,
    true_w: Sequence[float] = (2.0, -3.4),
    true_b: float = 4.2,
    n_samples: int = 1000,
    noise: float = 0.01,
    val_fraction: float = 0.2,
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    bias: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """The data are drawn in float64 and stored in `dtype`: the same numbers, rounded, for every dtype."""
    w = np.asarray(true_w, dtype=np.float64)
    if w.ndim != 1 or w.size == 0 or not np.isfinite(w).all():
        raise ValueError(f"true_w must be a non-empty list of finite numbers; received: {list(true_w)!r}")
    if not math.isfinite(true_b):
        raise ValueError(f"true_b must be a finite number; received: {true_b!r}")
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0; received: {noise!r}")
    check_split(n_samples, val_fraction)
    check_dtype(dtype)

    rng = np.random.default_rng(seed)  # the one generator: data, init, batch order
    X = np.empty((n_samples, w.size), dtype=dtype)  # (n, in)
    labels = np.empty(n_samples)  # X·w + b + noise in float64, rounded to dtype once at the end
    rows = max(1, DRAW_ROWS_BYTES // (8 * w.size))
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by check_range, naming its cause
        for start in range(0, n_samples, rows):  # chunks: no float64 draw exists whole
            chunk = rng.normal(size=(min(rows, n_samples - start), w.size))
            X[start : start + len(chunk)] = chunk
            labels[start : start + len(chunk)] = chunk @ w + true_b
        for start in range(0, n_samples, rows * w.size):  # the same stream as one draw of n_samples
            stop = min(start + rows * w.size, n_samples)
            labels[start:stop] += rng.normal(0.0, noise, size=stop - start)
    check_range("labels made by true_w, true_b and noise", labels, dtype)
    y = labels.astype(dtype)[:, None]  # (n, 1)
    del labels
    return assemble(
        "linreg", rng, X, y,
        spec=make_spec([Linear(w.size, 1, bias=bias)]),
        init=partial(normal_init, sigma=0.01),  # the reference's init.Normal(sigma=0.01), bias 0
        val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, iid=True, shuffle=shuffle,
        val_rows=val_rows, init_from=init_from,
        truth={"0.weight": w[None, :], "0.bias": np.array([float(true_b)])},
        settings={"seed": seed, "true_w": w.tolist(), "true_b": float(true_b), "n_samples": n_samples,
                  "noise": noise},
    )


def data_shape(**given: Any) -> tuple[int, int]:
    return given_or_default(make_problem, given, "n_samples"), len(given_or_default(make_problem, given, "true_w"))


TRUE_W = TaskOption("true_w", "the true weights, e.g. 2,-3.4 (--true-w=-1,2 for a leading minus)", floats,
                    sizes="features")
TRUE_B = TaskOption("true_b", "the true bias", float, sweepable=True)

TASK = Task(
    name="linreg",
    description="linear regression with known true_w, true_b (d2l §3.3, Gluon)",
    make_problem=make_problem,
    defaults={"linear": {"lr": 0.03, "epochs": 3, "batch_size": 10}},
    default_model="linear",
    data_shape=data_shape,
    options=(TRUE_W, TRUE_B, N_SAMPLES, NOISE, *COMMON),
)
