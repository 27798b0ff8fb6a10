"""Train one problem on each backend: shared mode (identical start and batches) or native mode."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends import Backend, get_backend
from tasks import Problem

Params = dict[str, np.ndarray]
INIT_MODES = ("shared", "native")


@dataclass
class BackendResult:
    backend: str
    init: str  # "shared", or what the framework's own initialiser and loader drew
    params: Params
    step_losses: np.ndarray  # every optimiser step's batch loss, before its update
    initial_loss: float  # on the whole training set, before training
    final_train_loss: float
    final_val_loss: float
    initial_function_error: float | None  # RMS error against the true function on the task's grid
    final_function_error: float | None
    epochs: int
    seconds: float  # training steps only: after the warm-up, without data conversion or evaluation


def build_backends(problem: Problem, names: list[str], options: dict[str, Any]) -> list[Backend]:
    """Construct every backend first, so a bad option fails before any training starts."""
    return [get_backend(name)(problem.spec, **options) for name in names]


def function_error(backend: Backend, problem: Problem) -> float | None:
    if problem.X_grid is None or problem.f_grid is None:
        return None
    return float(np.sqrt(np.mean((backend.predict(problem.X_grid) - problem.f_grid) ** 2)))


def train(backend: Backend, problem: Problem, init: str = "shared", seed: int = 0) -> BackendResult:
    """Shared: the task's initial parameters and batches. Native: the framework's own, seeded by `seed`."""
    if init == "shared":
        backend.set_params(problem.initial_params)
        epoch_batches, described = problem.epoch_batches, "shared"
    elif init == "native":
        backend.native_init(seed)
        epoch_batches = backend.native_batches(len(problem.X_train), problem.batch_size,
                                               len(problem.epoch_batches), seed, problem.shuffle)
        described = backend.native_init_description
    else:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}; received: {init!r}")
    backend.load(problem.X_train, problem.y_train)
    initial_loss = backend.loss(problem.X_train, problem.y_train)
    initial_function_error = function_error(backend, problem)
    first = epoch_batches[0][0]
    backend.loss_and_grads(problem.X_train[first], problem.y_train[first])  # warm-up: no update
    start = time.perf_counter()
    step_losses = [backend.train_epoch(batches) for batches in epoch_batches]
    seconds = time.perf_counter() - start
    return BackendResult(
        backend=backend.name,
        init=described,
        params=backend.get_params(),
        step_losses=np.concatenate(step_losses),
        initial_loss=initial_loss,
        final_train_loss=backend.loss(problem.X_train, problem.y_train),
        final_val_loss=backend.loss(problem.X_val, problem.y_val),
        initial_function_error=initial_function_error,
        final_function_error=function_error(backend, problem),
        epochs=len(epoch_batches),
        seconds=seconds,
    )
