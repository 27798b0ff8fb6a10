"""One-step-ahead forecasting of the yearly sunspot numbers, 1700–2008 (the data set statsmodels ships, no
download): each example is a window of `window` years, its target the next year's number.

The split is chronological: the last val_fraction of the windows (by their target's year) are held out, never
shuffled into training. The numbers are standardised by the training targets' mean and standard deviation
(both in the settings). The model is a recurrent layer of each --hidden size (the last giving its last step's
state) and a linear layer to one output, or any --layers over (window, 1) sequences.

The reference row is the best linear autoregressive model of the same window, AR(window), by least squares on
the training split: a recurrent model that does not beat it has learned nothing a linear filter cannot.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN, Input, Layer, Linear, ModelSpec, Recurrent, make_spec
from .base import Problem, Task, assemble, check_dtype, check_split, layers_setting, layers_spec, uniform_init
from .datafile import load_sequences, sequence_shape
from .options import DATA, HIDDEN, INIT_FROM, LAYERS, SHUFFLE, VAL_FRACTION, TaskOption

CELLS: dict[str, type[Recurrent]] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
YEARS = 309  # 1700–2008
WINDOW_DEFAULT = 10

CELL = TaskOption("cell", "the recurrent layer of the model, one per --hidden size", str,
                  choices=tuple(CELLS), sweepable=True)
WINDOW = TaskOption("window", f"the years each sequence example sees, its target the next year's number (default "
                              f"{WINDOW_DEFAULT}; the sunspots', not --data's)", int, sweepable=True)


def flattened(X: np.ndarray) -> np.ndarray:
    """A window of (steps, 1) as the inputs of a linear model: the AR reference's features."""
    return X.reshape(len(X), -1)


def recurrent_stack(front: list[Layer], width: int, cell: str, hidden: Sequence[int], outputs: int) -> ModelSpec:
    """`front` (giving sequences of `width` features), one `cell` layer per hidden size, then a linear layer to
    `outputs`: every layer but the last recurrent one gives every step's output to the next."""
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; received: {cell!r}")
    sizes = list(hidden)
    if not sizes or any(isinstance(size, bool) or not isinstance(size, int) or size < 1 for size in sizes):
        raise ValueError(f"hidden must be positive integers, one per recurrent layer; received: {hidden!r}")
    layers = list(front)
    for position, size in enumerate(sizes):
        # bias=input: one bias vector, what every framework's LSTM and RNN can hold (torch and Gluon hold their
        # second at zero), and Flax's GRU (Keras's GRU holds two or none: it is skipped by name)
        layers.append(CELLS[cell](width, size, sequences=position < len(sizes) - 1, bias="input"))
        width = size
    layers.append(Linear(width, outputs))
    return make_spec(layers)


def model_settings(cell: str, hidden: Sequence[int], layers: str | Sequence[Layer] | None,
                   spec: ModelSpec) -> dict[str, Any]:
    """What a run's settings say of the model: its cell and hidden sizes, or the layers written."""
    return {"cell": cell, "hidden": list(hidden)} if layers is None else {"layers": layers_setting(layers, spec)}


def _shape(window: int | None, data: str | None) -> tuple[int, int]:
    """One example's (steps, features): a file's sequences, or the sunspots' windows."""
    if data is not None:
        if window is not None:
            raise ValueError("window applies to the sunspot numbers; --data's sequences are the examples as they are")
        steps, features = sequence_shape(data)[1:]
        return steps, features
    window = WINDOW_DEFAULT if window is None else window
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= YEARS // 2:
        raise ValueError(f"window must be an integer from 1 to {YEARS // 2} (years); received: {window!r}")
    return window, 1


def _model(cell: str, hidden: Sequence[int], layers: str | Sequence[Layer] | None, shape: tuple[int, int],
           outputs: int = 1) -> ModelSpec:
    if layers is None:
        return recurrent_stack([Input(shape)], shape[1], cell, hidden, outputs)
    return layers_spec(layers, shape, outputs)


def _chronological(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, n_val: int) -> tuple[np.ndarray, ...]:
    """The last n_val examples held out: the future is never trained on."""
    return X[:-n_val], y[:-n_val], X[-n_val:], y[-n_val:]


def _sunspots(window: int) -> tuple[np.ndarray, np.ndarray]:
    from statsmodels.datasets import sunspots  # imported when used

    series = sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(dtype=np.float64)
    starts = np.arange(len(series) - window)
    return series[starts[:, None] + np.arange(window)][:, :, None], series[starts + window][:, None]


def make_problem(
    *,
    seed: int = 0,
    epochs: int = 30,
    batch_size: int | None = 16,
    cell: str = "lstm",
    hidden: Sequence[int] = (16,),
    window: int | None = None,
    layers: str | Sequence[Layer] | None = None,
    data: str | None = None,
    val_fraction: float = 0.2,
    shuffle: bool = True,
    init_from: str | None = None,
    dtype: str = "float64",
) -> Problem:
    """Windows of the sunspot series (or a file's sequences) and a recurrent model: see the module."""
    check_dtype(dtype)
    shape = _shape(window, data)
    spec = _model(cell, hidden, layers, shape)
    if data is None:
        X, y = _sunspots(shape[0])
        source = {"dataset": "sunspots (statsmodels), yearly 1700–2008", "window": shape[0]}
    else:
        X, y = load_sequences(data)
        source = {"data": str(data), "sequences": list(X.shape[1:])}
    check_split(len(X), val_fraction)
    problem = assemble(
        "sequence", np.random.default_rng(seed), X, y, spec=spec, init=uniform_init, val_fraction=val_fraction,
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, init_from=init_from, splitter=_chronological,
        settings={"seed": seed, **source, **model_settings(cell, hidden, layers, spec)})
    # The sunspots' windows and targets are one series, scaled alike; a file's features and targets each their own
    axes = (0, 1)
    x_mean, x_std = ((problem.y_train.mean(), problem.y_train.std()) if data is None else
                     (problem.X_train.mean(axis=axes), problem.X_train.std(axis=axes)))
    y_mean, y_std = float(problem.y_train.mean()), float(problem.y_train.std()) or 1.0
    x_std = np.where(np.asarray(x_std) > 0, x_std, 1.0)

    def inputs(values: np.ndarray) -> np.ndarray:
        return ((values - x_mean) / x_std).astype(dtype)

    def targets(values: np.ndarray) -> np.ndarray:
        return ((values - y_mean) / y_std).astype(dtype)

    name = f"AR({shape[0]}) least-squares" if data is None else "linear least-squares"
    return dataclasses.replace(
        problem, X_train=inputs(problem.X_train), y_train=targets(problem.y_train), X_val=inputs(problem.X_val),
        y_val=targets(problem.y_val), reference_features=flattened, reference_name=name,
        settings={**problem.settings, "standardized": {"mean": y_mean, "std": y_std}})


def data_shape(*, window: int | None = None, data: str | None = None, **_: Any) -> tuple[int, int]:
    """(rows, values per example) without reading the data: for the memory check that comes first."""
    if data is not None:
        rows, steps, features = sequence_shape(data)
        return rows, steps * features
    steps = _shape(window, None)[0]
    return YEARS - steps, steps


def spec_for(*, cell: str = "lstm", hidden: Sequence[int] = (16,), window: int | None = None,
             data: str | None = None, layers: str | Sequence[Layer] | None = None, **_: Any) -> ModelSpec:
    """The model, for the memory check."""
    return _model(cell, hidden, layers, _shape(window, data))


TASK = Task(
    name="sequence",
    description="one-step-ahead forecasts of the yearly sunspot numbers (bundled with statsmodels) by an RNN, GRU "
                "or LSTM, against the best linear AR model of the same window",
    make_problem=make_problem,
    defaults={"mlp": {"lr": 0.1, "epochs": 30, "batch_size": 16}},
    default_model="mlp",
    data_shape=data_shape,
    options=(CELL, HIDDEN, WINDOW, LAYERS, DATA, VAL_FRACTION, SHUFFLE, INIT_FROM),
    spec_for=spec_for,
)
