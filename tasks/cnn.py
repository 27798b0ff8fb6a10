"""A convolutional classifier of images: scikit-learn's bundled handwritten digits (1,797 images of 8×8
pixels, 10 classes, no download) or your own .npz of images, with a LeNet-style stack by default or any
stack of layers written as text (--layers; the grammar is in backend_compare/layers/text.py).

The split is the classifier task's: scikit-learn's stratified train_test_split with random_state=seed.
Pixels are scaled by one mean and one standard deviation, those of every training pixel (a convolution
shares its kernel across positions, so every position is scaled alike); both go into the settings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers import Layer, ModelSpec
from .base import Problem, Task, assemble, check_dtype, layers_setting, layers_spec, uniform_init
from .datafile import image_shape, load_images
from .labelled import DATASET, one_source, stratified_split
from .options import DATA, INIT_FROM, LAYERS, SHUFFLE, VAL_FRACTION, VAL_ROWS

DATASETS = ("digits",)
DEFAULT_LAYERS = ("conv2d(6, 3, padding=same), relu, maxpool(2), conv2d(16, 3, padding=same), relu, maxpool(2), "
                  "flatten, linear({classes})")  # one logit per class of the data
DIGITS_SHAPE = (1797, 1, 8, 8)


def _images(dataset: str | None, data: str | None) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """X (n, C, H, W) float64, class indices (n, 1), class names, and where they came from."""
    one_source(dataset, data)
    if data is not None:
        X, labels, classes = load_images(data)
        return X, labels, classes, {"data": str(data)}
    name = dataset or DATASETS[0]
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)} (images); received: {name!r}")
    from sklearn import datasets  # imported when used: a second or so

    bunch = datasets.load_digits()
    return (np.asarray(bunch.images, dtype=np.float64)[:, None], np.asarray(bunch.target, np.float64)[:, None],
            [str(name) for name in bunch.target_names], {"dataset": name})


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 10,
    batch_size: int | None = 32,
    layers: str | Sequence[Layer] | None = None,
    dataset: str | None = None,
    data: str | None = None,
    val_fraction: float = 0.2,
    val_rows: Sequence[int] | None = None,
    shuffle: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """Images and a model of `layers` (text or layer objects; the LeNet-style default without): see the module."""
    check_dtype(dtype)
    shape = tuple(image_shape(data)[1:]) if data is not None else DIGITS_SHAPE[1:]
    layers_spec(DEFAULT_LAYERS.format(classes=10) if layers is None else layers, shape)  # before any image is read
    X, labels, classes, source = _images(dataset, data)
    if len(classes) < 2:
        raise ValueError(f"classification needs at least 2 classes; the data's y holds one: {classes[0]!r}")
    text = DEFAULT_LAYERS.format(classes=len(classes)) if layers is None else layers
    spec = layers_spec(text, X.shape[1:], len(classes), classes=True)
    problem = assemble(
        "cnn", np.random.default_rng(seed), X, labels, spec=spec, init=uniform_init, val_fraction=val_fraction,
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, val_rows=val_rows, init_from=init_from,
        splitter=stratified_split(seed, classes),
        settings={"seed": seed, **source, "rows": len(X), "image": list(X.shape[1:]), "classes": classes,
                  "layers": layers_setting(text, spec)})
    mean, std = float(problem.X_train.mean()), float(problem.X_train.std()) or 1.0
    return dataclasses.replace(
        problem, classes=classes, X_train=((problem.X_train - mean) / std).astype(dtype),
        X_val=((problem.X_val - mean) / std).astype(dtype), y_train=problem.y_train.astype(dtype),
        y_val=problem.y_val.astype(dtype),
        settings={**problem.settings, "standardized": {"mean": mean, "std": std}})


def data_shape(*, dataset: str | None = None, data: str | None = None, **_: Any) -> tuple[int, int]:
    """(rows, values per image) without reading the images: for the memory check that comes first."""
    shape = image_shape(data) if data is not None else DIGITS_SHAPE
    return shape[0], math.prod(shape[1:])


def spec_for(*, layers: str | Sequence[Layer] | None = None, dataset: str | None = None, data: str | None = None,
             **_: Any) -> ModelSpec:
    """The model, without reading the images (their shape from the file's header): for the memory check."""
    shape = tuple(image_shape(data)[1:]) if data is not None else DIGITS_SHAPE[1:]
    return layers_spec(DEFAULT_LAYERS.format(classes=10) if layers is None else layers, shape)


TASK = Task(
    name="cnn",
    description="a convolutional classifier of digits (bundled 8×8 images) or your .npz of images",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 10, "batch_size": 32}},
    default_model="mlp",
    data_shape=data_shape,
    losses=("cross-entropy",),
    options=(DATASET, DATA, LAYERS, VAL_FRACTION, VAL_ROWS, SHUFFLE, INIT_FROM),
    spec_for=spec_for,
)
