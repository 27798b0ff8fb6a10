"""Softmax regression: one linear layer, cross-entropy on its logits (Dive into Deep Learning §3.4–3.7), on a
data set bundled with scikit-learn or your own file of class labels."""

from __future__ import annotations

from collections.abc import Sequence

from .base import Problem, Task
from .labelled import DATASET, classification_problem, shape
from .options import COMMON, DATA, HEADER, TARGET


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 100,
    batch_size: int | None = 32,
    dataset: str | None = None,
    data: str | None = None,
    target: str | None = None,
    header: bool | None = None,
    val_fraction: float = 0.2,
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    bias: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """`dataset`: iris, wine, breast_cancer or digits (the default); or `data`, a CSV whose `target` column
    holds the class labels (any text or numbers), or an .npz with X and integer y."""
    return classification_problem("softmax", seed=seed, epochs=epochs, batch_size=batch_size, model="linear",
                                  hidden=(), activation="tanh", val_fraction=val_fraction, dtype=dtype,
                                  dataset=dataset, data=data, target=target, header=header,
                                  val_rows=val_rows, shuffle=shuffle, bias=bias, init_from=init_from)


TASK = Task(
    name="softmax",
    description="softmax regression on iris, wine, breast_cancer, digits (bundled) or your labelled file",
    make_problem=make_problem,
    defaults={"linear": {"lr": 0.3, "epochs": 100, "batch_size": 32, "weight_decay": 1e-3}},
    default_model="linear",
    data_shape=shape,
    losses=("cross-entropy",),
    options=(DATASET, DATA, TARGET, HEADER, *COMMON),
)
