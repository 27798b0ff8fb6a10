"""An MLP classifier: Linear–activation–…–Linear with one logit per class, cross-entropy (Dive into Deep
Learning §4), on a data set bundled with scikit-learn or your own file of class labels."""

from __future__ import annotations

from collections.abc import Sequence

from ..layers import Layer
from .base import Problem, Task
from .labelled import DATASET, classification_problem, shape, spec_for
from .options import ACTIVATION, BATCHNORM, COMMON, DATA, HEADER, HIDDEN, LAYERS, TARGET


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int | None = 32,
    hidden: Sequence[int] = (32,),
    activation: str = "tanh",
    batchnorm: str | None = None,
    layers: str | Sequence[Layer] | None = None,
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
    """As the softmax task, with hidden layers of the sizes given, or the model `layers` describes (text or layer
    objects: then hidden, activation and batchnorm do not apply)."""
    return classification_problem("classifier", seed=seed, epochs=epochs, batch_size=batch_size, model="mlp",
                                  hidden=hidden, activation=activation, val_fraction=val_fraction, dtype=dtype,
                                  dataset=dataset, data=data, target=target, header=header, batchnorm=batchnorm,
                                  layers=layers, val_rows=val_rows, shuffle=shuffle, bias=bias, init_from=init_from)


TASK = Task(
    name="classifier",
    description="MLP classifier on iris, wine, breast_cancer, digits (bundled) or your labelled file",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 30, "batch_size": 32}},
    default_model="mlp",
    data_shape=shape,
    losses=("cross-entropy",),
    options=(DATASET, DATA, TARGET, HEADER, HIDDEN, ACTIVATION, BATCHNORM, LAYERS, *COMMON),
    spec_for=spec_for,
)
