"""Messages between the main process and a worker: a JSON header and arrays as .npy bytes (format
1.0, no pickle), which NumPy 1.x and 2.x both read exactly, so a worker may run on another NumPy.

Each message is: 8 bytes (little-endian length of the header), the header (UTF-8 JSON: the message
and the names and byte sizes of its arrays), then each array's .npy bytes.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import fields
from typing import IO, Any

import numpy as np

from ..layers import decode_spec, encode_spec
from ..tasks import Problem
from .run import BackendResult

PROTOCOL = 4  # raised whenever a message changes shape: a worker of another version is refused
Arrays = dict[str, np.ndarray]


class WorkerGone(Exception):
    """The other end closed the stream: the worker died, or the main process went away."""


def send(stream: IO[bytes], message: dict[str, Any], arrays: Arrays | None = None) -> None:
    blobs = {name: _npy(array) for name, array in (arrays or {}).items()}
    header = json.dumps({"message": message, "arrays": {name: len(blob) for name, blob in blobs.items()}}).encode()
    stream.write(struct.pack("<Q", len(header)) + header + b"".join(blobs.values()))
    stream.flush()


def receive(stream: IO[bytes]) -> tuple[dict[str, Any], Arrays]:
    (size,) = struct.unpack("<Q", _exactly(stream, 8))
    header = json.loads(_exactly(stream, size))
    arrays = {name: np.lib.format.read_array(io.BytesIO(_exactly(stream, length)), allow_pickle=False)
              for name, length in header["arrays"].items()}
    return header["message"], arrays


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise WorkerGone("the stream ended")
    return data


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


# ---- what crosses: a problem, and a result ----

PROBLEM_ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_grid", "f_grid")


def encode_problem(problem: Problem) -> tuple[dict[str, Any], Arrays]:
    """The problem as a message; its batch order travels as the recipe that makes it (a seeded state)."""
    arrays = {name: getattr(problem, name) for name in PROBLEM_ARRAYS if getattr(problem, name) is not None}
    arrays.update({f"initial/{name}": value for name, value in problem.initial_params.items()})
    arrays.update({f"truth/{name}": value for name, value in (problem.truth or {}).items()})
    message = {"task": problem.task, "spec": encode_spec(problem.spec), "shuffle": problem.shuffle,
               "settings": problem.settings, "batches": problem.epoch_batches.recipe,
               "has_truth": problem.truth is not None, "classes": problem.classes}
    return message, arrays


def decode_problem(message: dict[str, Any], arrays: Arrays) -> Problem:
    from ..backends.batches import from_recipe

    def prefixed(prefix: str) -> dict[str, np.ndarray]:
        return {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}

    return Problem(task=message["task"], spec=decode_spec(message["spec"]), X_train=arrays["X_train"],
                   y_train=arrays["y_train"], X_val=arrays["X_val"], y_val=arrays["y_val"],
                   initial_params=prefixed("initial/"), epoch_batches=from_recipe(message["batches"]),
                   truth=prefixed("truth/") if message["has_truth"] else None, X_grid=arrays.get("X_grid"),
                   f_grid=arrays.get("f_grid"), shuffle=message["shuffle"], settings=message["settings"],
                   classes=message["classes"])


def encode_result(result: BackendResult) -> tuple[dict[str, Any], Arrays]:
    scalars = {field.name: getattr(result, field.name) for field in fields(result)
               if field.name not in ("params", "step_losses", "checkpoints", "confusion")}
    scalars["checkpoint_steps"] = [steps for steps, _ in result.checkpoints]
    arrays = {f"params/{name}": value for name, value in result.params.items()}
    arrays["step_losses"] = result.step_losses
    arrays.update({f"confusion/{split}": counts for split, counts in result.confusion.items()})
    for index, (_, params) in enumerate(result.checkpoints):
        arrays.update({f"checkpoint{index}/{name}": value for name, value in params.items()})
    return scalars, arrays


def decode_result(message: dict[str, Any], arrays: Arrays) -> BackendResult:
    def prefixed(prefix: str) -> dict[str, np.ndarray]:
        return {name[len(prefix):]: value for name, value in arrays.items() if name.startswith(prefix)}

    scalars = dict(message)
    steps = scalars.pop("checkpoint_steps")
    scalars["curve"] = [tuple(point) for point in scalars["curve"]]
    scalars["clock"] = [tuple(point) for point in scalars["clock"]]
    return BackendResult(**scalars, params=prefixed("params/"), step_losses=arrays["step_losses"],
                         confusion=prefixed("confusion/"),
                         checkpoints=[(step, prefixed(f"checkpoint{index}/")) for index, step in enumerate(steps)])
