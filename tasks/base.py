"""What a task hands to every backend: data, truth, initial parameters and batch order, all NumPy."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backends.spec import ModelSpec, param_shapes

Params = dict[str, np.ndarray]


@dataclass
class Problem:
    """One task instance. Rows of X_train are what `epoch_batches` index into."""

    task: str
    spec: ModelSpec
    X_train: np.ndarray  # (n_train, in)
    y_train: np.ndarray  # (n_train, out)
    X_val: np.ndarray
    y_val: np.ndarray
    initial_params: Params
    epoch_batches: list[list[np.ndarray]]  # [epoch][step] -> row indices into X_train
    truth: Params | None  # true parameters in the canonical layout, when the task has them
    loss: str = "mse"
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    make_problem: Callable[..., Problem]
    defaults: dict[str, Any]  # the reference run's lr, epochs and batch_size


def check_split(n_samples: int, val_fraction: float) -> int:
    """Number of validation rows; both parts must be non-empty."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1; received: {val_fraction!r}")
    n_val = int(round(n_samples * val_fraction))
    if n_val < 1 or n_samples - n_val < 1:
        raise ValueError(
            f"n_samples must leave at least one training and one validation row with "
            f"val_fraction={val_fraction}; received: {n_samples!r}"
        )
    return n_val


def split(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, n_val: int) -> tuple[np.ndarray, ...]:
    """A random hold-out split: X_train, y_train, X_val, y_val."""
    order = rng.permutation(len(X))
    train, val = order[n_val:], order[:n_val]
    return X[train], y[train], X[val], y[val]


def normal_init(rng: np.random.Generator, spec: ModelSpec, sigma: float) -> Params:
    """Weights ~ N(0, sigma²), biases zero: the Gluon reference's init.Normal(sigma)."""
    return {
        name: rng.normal(0.0, sigma, size=shape) if name.endswith("weight") else np.zeros(shape)
        for name, shape in param_shapes(spec).items()
    }


def batch_order(
    rng: np.random.Generator, n_train: int, batch_size: int, epochs: int, shuffle: bool = True
) -> list[list[np.ndarray]]:
    """Per epoch, the row indices of each minibatch; the last batch of an epoch may be smaller."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; received: {batch_size!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; received: {epochs!r}")
    if batch_size > n_train:
        warnings.warn(f"batch_size={batch_size} exceeds the {n_train} training rows; using {n_train}", stacklevel=2)
        batch_size = n_train
    epochs_out = []
    for _ in range(epochs):
        order = rng.permutation(n_train) if shuffle else np.arange(n_train)
        epochs_out.append([order[i : i + batch_size] for i in range(0, n_train, batch_size)])
    return epochs_out
