"""Sequence classification of token ids with a known rule: sequences of `steps` tokens drawn uniformly from a
vocabulary of `vocabulary`, drawn from the seed, each labelled by which of tokens 1 and 2 it holds more often
(a tie is drawn again). The truth is the rule, so a model that learns it reaches 100 %; the run takes seconds.

The model is an embedding of width 8, one --cell layer per --hidden size (bias=input, as the sequence task's)
and a linear layer to the two classes' logits, or any --layers that starts with embedding(VOCABULARY, WIDTH).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers import Embedding, Input, Layer, ModelSpec
from .base import Problem, Task, assemble, check_dtype, layers_setting, layers_spec, uniform_init
from .options import HIDDEN, INIT_FROM, LAYERS, N_SAMPLES, SHUFFLE, VAL_FRACTION, TaskOption
from .sequence import CELL, recurrent_stack

CLASSES = ["more 2s", "more 1s"]
WIDTH = 8  # the default model's embedding width

VOCABULARY = TaskOption("vocabulary", "the tokens a sequence draws from (the tokens task's; at least 3: 0, 1, 2…)",
                        int, sweepable=True)
STEPS = TaskOption("steps", "the tokens in each sequence (the tokens task's)", int, sweepable=True)


def _check(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= 10_000:
        raise ValueError(f"{name} must be an integer from {least} to 10000; received: {value!r}")


def _spec(cell: str, hidden: Sequence[int], vocabulary: int, steps: int) -> ModelSpec:
    return recurrent_stack([Input((steps,)), Embedding(vocabulary, WIDTH)], WIDTH, cell, hidden, len(CLASSES))


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 20,
    batch_size: int | None = 32,
    vocabulary: int = 6,
    steps: int = 12,
    n_samples: int = 1000,
    cell: str = "lstm",
    hidden: Sequence[int] = (16,),
    layers: str | Sequence[Layer] | None = None,
    val_fraction: float = 0.2,
    shuffle: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """Token sequences and their labels by the rule, drawn from the seed: see the module."""
    check_dtype(dtype)
    _check("vocabulary", vocabulary, 3)
    _check("steps", steps, 1)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or not 2 <= n_samples <= 10_000_000:
        raise ValueError(f"n_samples must be an integer from 2 to 10000000; received: {n_samples!r}")
    spec = _spec(cell, hidden, vocabulary, steps) if layers is None else layers_spec(
        layers, (steps,), len(CLASSES), classes=True)
    rng = np.random.default_rng(seed)
    X = np.empty((0, steps), dtype=np.int64)
    while len(X) < n_samples:  # ties drawn again: the rule gives every kept sequence one label
        drawn = rng.integers(0, vocabulary, size=(2 * n_samples, steps))
        margin = (drawn == 1).sum(axis=1) - (drawn == 2).sum(axis=1)
        X = np.concatenate([X, drawn[margin != 0]])[:n_samples]
    labels = ((X == 1).sum(axis=1) > (X == 2).sum(axis=1)).astype(np.float64)[:, None]
    problem = assemble(
        "tokens", rng, X.astype(dtype), labels.astype(dtype), spec=spec, init=uniform_init,
        val_fraction=val_fraction, epochs=epochs, batch_size=batch_size, shuffle=shuffle, init_from=init_from,
        iid=True,
        settings={"seed": seed, "rule": "which of tokens 1 and 2 occurs more often", "vocabulary": vocabulary,
                  "steps": steps, "n_samples": n_samples, "classes": CLASSES,
                  **({"cell": cell, "hidden": list(hidden)} if layers is None
                     else {"layers": layers_setting(layers, spec)})})
    return dataclasses.replace(problem, classes=CLASSES)


def data_shape(*, n_samples: int = 1000, steps: int = 12, **_: Any) -> tuple[int, int]:
    """(rows, values per example) without drawing anything: for the memory check that comes first."""
    return n_samples, steps


def spec_for(*, cell: str = "lstm", hidden: Sequence[int] = (16,), vocabulary: int = 6, steps: int = 12,
             layers: str | Sequence[Layer] | None = None, **_: Any) -> ModelSpec:
    """The model, for the memory check."""
    _check("vocabulary", vocabulary, 3)
    _check("steps", steps, 1)
    return (_spec(cell, hidden, vocabulary, steps) if layers is None
            else layers_spec(layers, (steps,), len(CLASSES), classes=True))


TASK = Task(
    name="tokens",
    description="which of two tokens a sequence holds more often, by an embedding and an RNN, GRU or LSTM "
                "(token ids drawn from the seed; the rule is the truth)",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 20, "batch_size": 32}},
    default_model="mlp",
    data_shape=data_shape,
    losses=("cross-entropy",),
    options=(VOCABULARY, STEPS, N_SAMPLES, CELL, HIDDEN, LAYERS, VAL_FRACTION, SHUFFLE, INIT_FROM),
    spec_for=spec_for,
)
