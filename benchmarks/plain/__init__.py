"""The yardstick: a plain training loop per framework, as a practitioner writes it by hand, apart from the suite.

Each `FRAMEWORK_loop.py` defines `plain_loop(spec, params, X, y, batches, compiled)`: it prepares outside the
timing and returns the epoch to time; `compiled` is the same loop with the framework's compiler (or its eager
default) on. The frameworks' modules also define `cnn_loop`, the default CNN's (below). Importing this package
imports no framework; `get_plain_loop(name)` and `get_plain_cnn_loop(name)` import one module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

LR = 1e-3  # small enough that no size diverges; the suite trains at the same rate
# The default CNN of --task cnn (benchmarks/cnn.py): each module's `cnn_loop(params, X, labels, batches)` trains
# conv(1→6, 3×3, same), relu, maxpool 2, conv(6→16, 3×3, same), relu, maxpool 2, flatten, linear(64→10) with
# cross-entropy and SGD at CNN_LR, torch and Gluon on NCHW data, Flax and Keras on NHWC as their tutorials hold images.
CNN_LR = 0.1
CNN_CONVS, CNN_LINEAR = ("1", "4"), "8"  # the canonical layer indices (the Input is layer 0)
# The default model of --task sequence (benchmarks/sequence.py): each module's `lstm_loop(X, y, batches)` trains
# an LSTM(1 → 16) over (window, 1) sequences, its last step into a linear layer to one output, with the mean
# squared error and SGD at SEQUENCE_LR, as the framework's tutorials write one. The starting values are the
# framework's own: the time of a step does not depend on them.
SEQUENCE_LR, SEQUENCE_HIDDEN = 0.1, 16
PLAIN = {"numpy": "numpy_loop", "torch": "torch_loop", "mxnet": "mxnet_loop", "jax": "jax_loop",
         "tensorflow": "tensorflow_loop"}  # framework -> module in this package


class PlainLoop(Protocol):
    def __call__(self, spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                 batches: list[np.ndarray], compiled: bool = ...) -> Callable[[], None]: ...


def channels_last_inputs(weight: np.ndarray) -> np.ndarray:
    """The CNN's linear weight for inputs flattened from (16, 2, 2) channels-last: the same function."""
    return weight.reshape(len(weight), 16, 2, 2).transpose(0, 2, 3, 1).reshape(len(weight), -1)


class PlainCnnLoop(Protocol):
    def __call__(self, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                 batches: list[np.ndarray]) -> Callable[[], None]: ...


def get_plain_cnn_loop(name: str) -> PlainCnnLoop:
    """The framework's plain loop of the default CNN (torch, mxnet, jax, tensorflow)."""
    if name not in PLAIN or name == "numpy":
        raise ValueError(f"no plain CNN loop for name={name!r}; there is one for torch, mxnet, jax, tensorflow")
    loop: PlainCnnLoop = importlib.import_module(f"{__name__}.{PLAIN[name]}").cnn_loop
    return loop


class PlainLstmLoop(Protocol):
    def __call__(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Callable[[], None]: ...


def get_plain_lstm_loop(name: str) -> PlainLstmLoop:
    """The framework's plain loop of the sequence task's default LSTM (torch, mxnet, jax, tensorflow)."""
    if name not in PLAIN or name == "numpy":
        raise ValueError(f"no plain LSTM loop for name={name!r}; there is one for torch, mxnet, jax, tensorflow")
    loop: PlainLstmLoop = importlib.import_module(f"{__name__}.{PLAIN[name]}").lstm_loop
    return loop


def get_plain_loop(name: str) -> PlainLoop:
    if name not in PLAIN:
        raise ValueError(f"no plain loop for name={name!r}; there is one for {', '.join(PLAIN)}")
    loop: PlainLoop = importlib.import_module(f"{__name__}.{PLAIN[name]}").plain_loop
    return loop
