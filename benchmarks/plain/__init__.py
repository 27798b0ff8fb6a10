"""The yardstick: a plain training loop per framework, as a practitioner writes it by hand, apart from the suite.

Each `FRAMEWORK_loop.py` defines `plain_loop(spec, params, X, y, batches, compiled)`: it prepares outside the
timing and returns the epoch to time; `compiled` is the same loop with the framework's compiler (or its eager
default) on. Importing this package imports no framework; `get_plain_loop(name)` imports one module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

LR = 1e-3  # small enough that no size diverges; the suite trains at the same rate
PLAIN = {"numpy": "numpy_loop", "torch": "torch_loop", "mxnet": "mxnet_loop", "jax": "jax_loop",
         "tensorflow": "tensorflow_loop"}  # framework -> module in this package


class PlainLoop(Protocol):
    def __call__(self, spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                 batches: list[np.ndarray], compiled: bool = ...) -> Callable[[], None]: ...


def get_plain_loop(name: str) -> PlainLoop:
    if name not in PLAIN:
        raise ValueError(f"no plain loop for name={name!r}; there is one for {', '.join(PLAIN)}")
    loop: PlainLoop = importlib.import_module(f"{__name__}.{PLAIN[name]}").plain_loop
    return loop
