"""Task registry. Tasks are NumPy only and know nothing about frameworks.

A task is one module with a TASK (see linreg.py) and one line in _BUILT_IN below; another package adds one
through the entry-point group "backend_compare.tasks" (name = "module:TASK").
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect

from .base import Problem, Task
from .options import TaskOption

ENTRY_POINTS = "backend_compare.tasks"

_BUILT_IN = {name: f"{__name__}.{name}:TASK" for name in ("linreg", "mlp", "celsius", "data", "softmax", "classifier",
                                                                 "cnn", "sequence", "tokens")}


def _installed() -> dict[str, str]:
    return {entry.name: entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINTS)
            if entry.name not in _BUILT_IN}


_REGISTRY = {**_BUILT_IN, **_installed()}
TASKS = tuple(_REGISTRY)

__all__ = ["TASKS", "Problem", "Task", "TaskOption", "get_task", "task_options"]


def get_task(name: str) -> Task:
    if name not in _REGISTRY:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; received: {name!r}")
    module, _, attribute = _REGISTRY[name].partition(":")
    task: Task = getattr(importlib.import_module(module), attribute)
    return task


@functools.cache
def task_options() -> dict[str, tuple[TaskOption, dict[str, object]]]:
    """Every registered task's declared options, each once (as first declared), with the tasks that take it
    and each one's default (make_problem's; inspect.Parameter.empty where the option is required)."""
    found: dict[str, tuple[TaskOption, dict[str, object]]] = {}
    for name in TASKS:
        task = get_task(name)
        keywords = inspect.signature(task.make_problem).parameters
        for option in task.options:
            found.setdefault(option.name, (option, {}))[1][name] = keywords[option.name].default
    return found
