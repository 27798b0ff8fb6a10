"""Task registry. Tasks are NumPy only and know nothing about frameworks."""

from __future__ import annotations

import importlib

from .base import Problem, Task

_REGISTRY = {name: f".{name}" for name in ("linreg", "mlp", "celsius", "data", "softmax", "classifier")}
TASKS = tuple(_REGISTRY)

__all__ = ["TASKS", "Problem", "Task", "get_task"]


def get_task(name: str) -> Task:
    if name not in _REGISTRY:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; received: {name!r}")
    task: Task = importlib.import_module(_REGISTRY[name], __name__).TASK
    return task
