"""A backend living in a worker process, with the Backend API, for research code and tests:

    from backend_compare import in_worker, mlp_spec
    model = in_worker("torch", mlp_spec(2, (8,), 1, "tanh"), dtype="float64")   # this environment
    other = in_worker("numpy", spec, python="/opt/np2/bin/python")              # another one
    model.set_params(params); model.fit(X, y, epochs=3); model.get_params()

Every call crosses as a message (arrays as .npy bytes); an error raised there is raised here with its
type and message. The worker ends with `close()`, with a `with` block, or with this process.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..layers import ModelSpec, encode_spec, make_spec
from . import protocol
from .workers import Worker, WorkerFailed

# Methods that run there: each returns a float, an array or parameters (fit and load return the proxy).
CALLS = ("fit", "get_params", "set_params", "native_init", "load", "predict", "loss", "training_loss",
         "loss_and_grads", "step", "train_epoch")


class RemoteError(Exception):
    """An error raised by the backend in its worker: its type and message."""


class RemoteBackend:
    """The Backend API of `name` (a backend; NAME@LABEL with `python`) running in a worker process."""

    def __init__(self, name: str, spec: ModelSpec | Sequence[Any], *, python: str | None = None,
                 **options: Any) -> None:
        self.name = name
        self._closed = False
        self._worker = Worker(name, python or sys.executable)
        try:
            self._worker.start()
            self._call("build", name=self._worker.backend, spec=encode_spec(make_spec(list(spec))),
                       options=options)
        except BaseException:
            self._worker.kill()
            raise

    @property
    def versions(self) -> dict[str, str]:
        """Python, NumPy and the framework, as found in the worker's environment."""
        return dict(self._worker.versions)

    @property
    def loss_history_(self) -> np.ndarray:
        return self._call("loss_history_")

    @property
    def params_(self) -> dict[str, np.ndarray]:
        return self.get_params()

    def __getattr__(self, method: str) -> Any:
        if method not in CALLS:
            raise AttributeError(f"{type(self).__name__} has no attribute {method!r}")

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._call(method, args=args, kwargs=kwargs)
            return self if method in ("fit", "load", "set_params", "native_init") and result is None else result
        return call

    def _call(self, method: str, **payload: Any) -> Any:
        if self._closed:
            raise ValueError(f"the {self.name} worker was closed: make a new in_worker({self.name!r}, …) to go on")
        arrays: protocol.Arrays = {}
        message = {"kind": "call", "method": method, "payload": _encode(payload, arrays)}
        try:
            reply, reply_arrays = self._worker.request(message, arrays, timeout=None)
        except WorkerFailed as err:
            raise RemoteError(f"the {self.name} worker is gone: {err}") from None
        if "error" in reply:  # the same kind of error as there, when it is one of Python's own
            kind = getattr(builtins, reply["type"], None)
            raise (kind if isinstance(kind, type) and issubclass(kind, Exception) else RemoteError)(reply["error"])
        return decode_value(reply["value"], reply_arrays)

    def close(self) -> None:
        self._closed = True
        self._worker.close()

    def __enter__(self) -> RemoteBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode(value: Any, arrays: protocol.Arrays) -> Any:
    """JSON with every array replaced by a reference to it in `arrays`."""
    if isinstance(value, (np.ndarray, np.generic)):
        key = str(len(arrays))
        arrays[key] = np.asarray(value)
        return {"__array__": key}
    if isinstance(value, Mapping):
        return {"__dict__": [[str(k), _encode(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(item, arrays) for item in value]
    return value


def decode_value(value: Any, arrays: protocol.Arrays) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        array = arrays[value["__array__"]]
        return array[()] if array.ndim == 0 else array
    if isinstance(value, dict) and "__dict__" in value:
        return {k: decode_value(v, arrays) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [decode_value(item, arrays) for item in value]
    return value


def serve_call(model: Any, method: str, payload: Any, arrays: protocol.Arrays) -> tuple[Any, protocol.Arrays]:
    """In the worker: `method` on `model` with the payload's arguments; the reply and its arrays."""
    if method not in (*CALLS, "loss_history_"):
        raise AttributeError(f"no method {method!r}")
    given = decode_value(payload, arrays)
    if method == "loss_history_":
        result = model.loss_history_
    else:
        result = getattr(model, method)(*given.get("args", []), **given.get("kwargs", {}))
    reply_arrays: protocol.Arrays = {}
    return {"value": _encode(None if result is model else result, reply_arrays)}, reply_arrays
