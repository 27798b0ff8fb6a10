"""Classification problems: a data set that ships inside scikit-learn, or the user's own file with a column of
class labels; a stratified split by the seed, features standardised with the training split's statistics.

The split is scikit-learn's `train_test_split(X, y, test_size=val_fraction, stratify=y, random_state=seed)`,
so scikit-learn reproduces it; the initial parameters and the batch order come from
numpy.random.default_rng(seed), as in every task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..layers import Layer, ModelSpec
from .base import (
    Problem,
    assemble,
    check_dtype,
    check_layers_alone,
    layers_setting,
    layers_spec,
    model_spec,
    uniform_init,
)
from .data import standardized
from .datafile import data_shape as file_shape
from .datafile import load_table
from .options import TaskOption

DATASETS = ("iris", "wine", "breast_cancer", "digits")  # bundled with scikit-learn: no download
DATASET = TaskOption("dataset", "a data set bundled with scikit-learn (default digits: 8×8 images of handwritten "
                                "digits)", str, choices=DATASETS, sizes="both")
DEFAULT_DATASET = "digits"
MAX_CLASSES = 1000  # more distinct labels than this is a regression target; a confusion matrix is classes²
SHAPES = {"iris": (150, 4), "wine": (178, 13), "breast_cancer": (569, 30), "digits": (1797, 64)}


@dataclasses.dataclass
class Labelled:
    X: np.ndarray  # (n, features), float64
    labels: np.ndarray  # (n,), class indices 0…K−1
    classes: list[str]  # the name of each class index
    features: list[str]
    source: dict[str, Any]  # what the settings say about where the rows came from


def load_dataset(name: str) -> Labelled:
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; received: {name!r}")
    from sklearn import datasets  # imported when used: a second or so

    bunch = getattr(datasets, f"load_{name}")()
    features = [str(feature) for feature in bunch.feature_names]
    return Labelled(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64),
                    [str(name) for name in bunch.target_names], features, {"dataset": name})


def load_file(data: str, target: str | None, header: bool | None) -> Labelled:
    table = load_table(data, target, header, labels=True)
    assert table.classes is not None  # labels=True gives them
    return Labelled(table.X, table.y[:, 0].astype(np.int64), table.classes, table.features,
                    {"data": str(data), "columns": table.features, "target": table.target, "header": table.header})


def one_source(dataset: str | None, data: str | None) -> None:
    """A bundled data set or the user's file, not both."""
    if data is not None and dataset is not None:
        raise ValueError(f"give a dataset or a data file (--dataset or --data), not both; received "
                         f"dataset={dataset!r} and data={data!r}")


def labelled_rows(*, dataset: str | None, data: str | None, target: str | None, header: bool | None) -> Labelled:
    """The bundled data set, or the user's file; the default data set when neither is given."""
    one_source(dataset, data)
    if data is None and (target is not None or header is not None):
        raise ValueError("target and header apply to a data file (--data FILE)")
    return load_file(data, target, header) if data is not None else load_dataset(dataset or DEFAULT_DATASET)


def spec_for(*, layers: str | Sequence[Layer] | None = None, dataset: str | None = None, data: str | None = None,
             **_: Any) -> ModelSpec | None:
    """The model --layers writes, for the memory check (None: the MLP of --hidden); its output is not checked
    against the classes, which only reading the labels gives."""
    return None if layers is None else layers_spec(layers, (shape(dataset=dataset, data=data)[1],))


def shape(*, dataset: str | None = None, data: str | None = None, **_: Any) -> tuple[int, int]:
    """(rows, features) without loading: for the memory check that comes first."""
    if data is not None:
        return file_shape(data)
    return SHAPES.get(dataset or DEFAULT_DATASET, (0, 0))


Splitter = Callable[[np.random.Generator, np.ndarray, np.ndarray, int], tuple[np.ndarray, ...]]


def stratified_split(seed: int, classes: list[str]) -> Splitter:
    """The split assemble() makes: scikit-learn's stratified train_test_split with random_state=seed, once
    the classes are checked to allow one."""
    def split(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, n_val: int) -> tuple[np.ndarray, ...]:
        from sklearn.model_selection import train_test_split

        check_classes(y[:, 0].astype(np.int64), classes, n_val)
        X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=n_val, stratify=y[:, 0],
                                                          random_state=seed)
        return X_train, y_train, X_val, y_val
    return split


def check_classes(labels: np.ndarray, classes: list[str], n_val: int) -> None:
    """Two classes at least, not so many that the labels look like a regression's, and every class with a
    row on each side of a stratified split."""
    if len(classes) < 2:
        raise ValueError(f"classification needs at least 2 classes; the target holds one: {classes[0]!r}")
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"the target holds {len(classes):,} distinct labels; classification here takes at most "
                         f"{MAX_CLASSES:,} classes (a column of measurements is --task data's)")
    counts = np.bincount(labels, minlength=len(classes))
    scarce = [name for name, count in zip(classes, counts, strict=True) if count < 2]
    if scarce:
        raise ValueError(f"a stratified split needs at least 2 rows of every class; "
                         f"{len(scarce)} class(es) have one: {', '.join(map(repr, scarce[:5]))}")
    if n_val < len(classes) or len(labels) - n_val < len(classes):
        raise ValueError(f"val_fraction must leave at least one row of each of the {len(classes)} classes "
                         f"on both sides of the split; it leaves {n_val} validation and "
                         f"{len(labels) - n_val} training rows")


def classification_problem(task: str, *, seed: int, epochs: int, batch_size: int | None, model: str,
                           hidden: Sequence[int], activation: str, val_fraction: float, dtype: str,
                           dataset: str | None, data: str | None, target: str | None,
                           header: bool | None, batchnorm: str | None = None,
                           val_rows: Sequence[int] | None = None, shuffle: bool = True,
                           bias: bool = True, init_from: str | None = None,
                           layers: str | Sequence[Layer] | None = None) -> Problem:
    check_layers_alone(layers, batchnorm, bias)
    if layers is None:
        model_spec(model, 1, 2, hidden, activation, batchnorm)  # checks sizes and names before anything is read
    check_dtype(dtype)
    labelled = labelled_rows(dataset=dataset, data=data, target=target, header=header)
    spec = (model_spec(model, labelled.X.shape[1], len(labelled.classes), hidden, activation, batchnorm, bias)
            if layers is None else layers_spec(layers, (labelled.X.shape[1],), len(labelled.classes), classes=True))
    problem = assemble(
        task, np.random.default_rng(seed), labelled.X, labelled.labels[:, None].astype(np.float64), spec=spec,
        init=uniform_init, val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
        val_rows=val_rows, init_from=init_from,
        splitter=stratified_split(seed, labelled.classes),
        settings={"seed": seed, **labelled.source, "rows": len(labelled.X), "features": labelled.X.shape[1],
                  "classes": labelled.classes,
                  **({"hidden": list(hidden), "activation": activation} if model == "mlp" and layers is None
                     else {}),
                  **({"layers": layers_setting(layers, spec)} if layers is not None else {}),
                  **({"batchnorm": batchnorm} if batchnorm else {})})
    scaled = standardized(problem)
    return dataclasses.replace(scaled, classes=labelled.classes, X_train=scaled.X_train.astype(dtype),
                               X_val=scaled.X_val.astype(dtype), y_train=scaled.y_train.astype(dtype),
                               y_val=scaled.y_val.astype(dtype))
