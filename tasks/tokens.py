"""Sequence classification of token ids with a known rule: sequences of `length` tokens drawn uniformly from a
vocabulary of `vocabulary`, drawn from the seed, each labelled by which of tokens 1 and 2 it holds more often
(a tie is drawn again). The truth is the rule, so a model that learns it reaches 100 %; the run takes seconds.

The model is an embedding of width 8, one --cell layer per --hidden size (bias=input, as the sequence task's)
and a linear layer to the two classes' logits, or any --layers that starts with embedding(VOCABULARY, WIDTH).

--data takes an .npz of token ids X (n, length), whole numbers from 0, and labels y (n,): its vocabulary is its
largest id + 1, its classes its distinct labels, its split a random one as the drawn data's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers import Embedding, Input, Layer, ModelSpec, first_layer
from .base import Problem, Task, assemble, check_dtype, layers_spec, uniform_init
from .datafile import data_shape as data_shape_of
from .datafile import load_table
from .options import DATA, HIDDEN, INIT_FROM, LAYERS, N_SAMPLES, SHUFFLE, VAL_FRACTION, TaskOption
from .sequence import CELL, model_settings, recurrent_stack

CLASSES = ["more 2s", "more 1s"]
WIDTH = 8  # the default model's embedding width
VOCABULARY_DEFAULT, LENGTH_DEFAULT, SAMPLES_DEFAULT = 6, 12, 1000
LARGEST_VOCABULARY = 10_000_000  # a file's: its table is vocabulary × width values in every backend (and its ids
# are whole numbers float32 holds exactly, below 2**24)
KEPT_AT_LEAST = 0.01  # the share of drawn sequences without a tie below which drawing is refused

VOCABULARY = TaskOption("vocabulary", "the tokens a sequence draws from (the tokens task's; at least 3: 0, 1, 2…)",
                        int, sweepable=True)
LENGTH = TaskOption("length", "the tokens in each sequence (the tokens task's)", int, sweepable=True)


def _check(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= 10_000:
        raise ValueError(f"{name} must be an integer from {least} to 10000; received: {value!r}")


def _ids(data: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A file's token ids X (n, length), checked to be whole numbers from 0, and its labels as class indices."""
    table = load_table(data, labels=True)
    bad = (np.floor(table.X) != table.X) | (table.X < 0) | (table.X >= LARGEST_VOCABULARY)
    if bad.any():
        row, position = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"data file {str(data)!r}: X must hold token ids, whole numbers from 0 to "
                         f"{LARGEST_VOCABULARY - 1}; received {table.X[row, position]!r} at row {row}, position "
                         f"{position}")
    assert table.classes is not None
    return table.X, table.y, table.classes


def _sizes(data: str | None, vocabulary: int | None, length: int | None, n_samples: int | None) -> tuple[int, int, int]:
    """(vocabulary, length, rows): the drawn data's; a file's length and rows (its vocabulary is read with its ids)."""
    if data is not None:
        given = [name for name, value in (("vocabulary", vocabulary), ("length", length), ("n_samples", n_samples))
                 if value is not None]
        if given:
            raise ValueError(f"{given[0]} applies to the drawn sequences; --data's are the examples as they are")
        rows, found = data_shape_of(data)
        return 0, found, rows
    vocabulary = VOCABULARY_DEFAULT if vocabulary is None else vocabulary
    length = LENGTH_DEFAULT if length is None else length
    n_samples = SAMPLES_DEFAULT if n_samples is None else n_samples
    _check("vocabulary", vocabulary, 3)
    _check("length", length, 1)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or not 2 <= n_samples <= 10_000_000:
        raise ValueError(f"n_samples must be an integer from 2 to 10000000; received: {n_samples!r}")
    return vocabulary, length, n_samples


def _untied(drawn: np.ndarray) -> np.ndarray:
    return (drawn == 1).sum(axis=1) != (drawn == 2).sum(axis=1)


def _drawn(rng: np.random.Generator, vocabulary: int, length: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """n_samples sequences without a tie, a tied one drawn again, and their labels by the rule."""
    X = rng.integers(0, vocabulary, size=(n_samples, length))
    tied = np.flatnonzero(~_untied(X))
    if len(tied) > (1 - KEPT_AT_LEAST) * n_samples:
        raise ValueError(f"with vocabulary {vocabulary} and length {length}, {len(tied) / n_samples:.1%} of the drawn "
                         "sequences hold as many 1s as 2s (no label): give a smaller --vocabulary or a larger --length")
    while len(tied):
        X[tied] = rng.integers(0, vocabulary, size=(len(tied), length))
        tied = tied[~_untied(X[tied])]
    return X.astype(np.float64), ((X == 1).sum(axis=1) > (X == 2).sum(axis=1)).astype(np.float64)[:, None]


def _model(cell: str, hidden: Sequence[int], layers: str | Sequence[Layer] | None, vocabulary: int, length: int,
           classes: int | None) -> ModelSpec:
    if layers is None:
        return recurrent_stack([Input((length,)), Embedding(vocabulary, WIDTH)], WIDTH, cell, hidden, classes or 2)
    spec = layers_spec(layers, (length,), classes, classes=classes is not None)
    if not first_layer(spec)[1].takes_ids:
        raise ValueError("the tokens task's --layers must start with embedding(VOCABULARY, WIDTH): its inputs are "
                         "token ids")
    return spec


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 20,
    batch_size: int | None = 32,
    vocabulary: int | None = None,
    length: int | None = None,
    n_samples: int | None = None,
    cell: str = "lstm",
    hidden: Sequence[int] = (16,),
    layers: str | Sequence[Layer] | None = None,
    data: str | None = None,
    val_fraction: float = 0.2,
    shuffle: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """Token sequences and their labels by the rule, drawn from the seed (or a file's): see the module."""
    check_dtype(dtype)
    vocabulary, length, n_samples = _sizes(data, vocabulary, length, n_samples)
    rng = np.random.default_rng(seed)
    if data is None:
        X, labels = _drawn(rng, vocabulary, length, n_samples)
        classes, source = CLASSES, {"rule": "which of tokens 1 and 2 occurs more often", "vocabulary": vocabulary,
                                    "length": length, "n_samples": n_samples}
    else:
        X, labels, classes = _ids(data)
        vocabulary = int(X.max()) + 1
        source = {"data": str(data), "vocabulary": vocabulary, "length": length}
    spec = _model(cell, hidden, layers, vocabulary, length, len(classes))
    first_layer(spec)[1].check_input(X, "the first layer")  # an embedding too small for the file's ids
    problem = assemble(
        "tokens", rng, X.astype(dtype), labels.astype(dtype), spec=spec, init=uniform_init,
        val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, shuffle=shuffle, init_from=init_from,
        iid=data is None,  # drawn rows are in no order; a file's may be (sorted by label): permuted
        settings={"seed": seed, **source, "classes": classes, **model_settings(cell, hidden, layers, spec)})
    return dataclasses.replace(problem, classes=classes)


def data_shape(*, n_samples: int | None = None, length: int | None = None, data: str | None = None,
               **_: Any) -> tuple[int, int]:
    """(rows, values per example) without drawing or reading anything: for the memory check that comes first."""
    if data is not None:
        return data_shape_of(data)
    return (SAMPLES_DEFAULT if n_samples is None else n_samples), (LENGTH_DEFAULT if length is None else length)


def spec_for(*, cell: str = "lstm", hidden: Sequence[int] = (16,), vocabulary: int | None = None,
             length: int | None = None, data: str | None = None, layers: str | Sequence[Layer] | None = None,
             **_: Any) -> ModelSpec:
    """The model, for the memory check (with --data, whose vocabulary and classes are read with its ids and
    labels: a table of one row, and any number of outputs)."""
    if data is not None:
        return _model(cell, hidden, layers, 1, data_shape_of(data)[1], None)
    vocabulary, length = _sizes(None, vocabulary, length, None)[:2]
    return _model(cell, hidden, layers, vocabulary, length, len(CLASSES))


TASK = Task(
    name="tokens",
    description="which of two tokens a sequence holds more often, by an embedding and an RNN, GRU or LSTM "
                "(token ids drawn from the seed; the rule is the truth)",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 20, "batch_size": 32}},
    default_model="mlp",
    data_shape=data_shape,
    losses=("cross-entropy",),
    options=(VOCABULARY, LENGTH, N_SAMPLES, CELL, HIDDEN, LAYERS, DATA, VAL_FRACTION, SHUFFLE, INIT_FROM),
    spec_for=spec_for,
)
