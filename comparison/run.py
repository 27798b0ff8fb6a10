"""Train one problem on each backend, under identical conditions (shared mode)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends import Backend, get_backend
from tasks import Problem

Params = dict[str, np.ndarray]


@dataclass
class BackendResult:
    backend: str
    params: Params
    step_losses: np.ndarray  # every optimiser step's batch loss, before its update
    initial_loss: float  # on the whole training set, before training
    final_train_loss: float
    final_val_loss: float
    epochs: int
    seconds: float  # training steps only: after the warm-up, without data conversion or evaluation


def build_backends(problem: Problem, names: list[str], options: dict[str, Any]) -> list[Backend]:
    """Construct every backend first, so a bad option fails before any training starts."""
    return [get_backend(name)(problem.spec, loss=problem.loss, **options) for name in names]


def train(backend: Backend, problem: Problem) -> BackendResult:
    backend.set_params(problem.initial_params)
    backend.load(problem.X_train, problem.y_train)
    initial_loss = backend.loss(problem.X_train, problem.y_train)
    first = problem.epoch_batches[0][0]
    backend.loss_and_grads(problem.X_train[first], problem.y_train[first])  # warm-up: no update
    start = time.perf_counter()
    step_losses = [backend.train_epoch(batches) for batches in problem.epoch_batches]
    seconds = time.perf_counter() - start
    return BackendResult(
        backend=backend.name,
        params=backend.get_params(),
        step_losses=np.concatenate(step_losses),
        initial_loss=initial_loss,
        final_train_loss=backend.loss(problem.X_train, problem.y_train),
        final_val_loss=backend.loss(problem.X_val, problem.y_val),
        epochs=len(problem.epoch_batches),
        seconds=seconds,
    )
