"""Whether a sweep's job converged, by the rule a run's note applies (fits.convergence_note): its training
loss against the exact optimum of its own objective on its own training split, which is solved once per
problem and objective. A model without an exact optimum is held to the lowest training loss any job of the
sweep reached on the same data and objective (another learning rate, more epochs): a job well above it did
not converge; one near it is not called converged (the best job may have stopped short too): unknown."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

from ..tasks import Problem
from .fits import NOT_CONVERGED, NOT_CONVERGED_PATH, convergence_note
from .run import OK, BackendResult, reference_result

# Settings that change how a job trains but not what it minimises, on what data: jobs that differ only in
# these are held to the same lowest loss.
HOW_TRAINED = ("lr", "batch_size", "epochs", "momentum", "optimizer")
MOST_KEPT = 8  # optima kept: a sweep's jobs of one point and seed share one
_optima: OrderedDict[tuple[Any, ...], tuple[Problem, BackendResult | None]] = OrderedDict()
_lock = threading.Lock()


def exact_optimum(problem: Problem, options: dict[str, Any]) -> BackendResult | None:
    """The exact optimum's row for the problem and the objective `options` give (None for other models)."""
    key = (id(problem), *(options.get(name) for name in ("dtype", "loss", "huber_delta", "weight_decay", "optimizer",
                                                          "label_smoothing")))
    with _lock:
        if key not in _optima:
            _optima[key] = (problem, reference_result(problem, options))  # the problem held: its id stays its own
            while len(_optima) > MOST_KEPT:
                _optima.popitem(last=False)
        _optima.move_to_end(key)
        return _optima[key][1]


def convergence(problem: Problem | None, options: dict[str, Any] | None,
                result: BackendResult) -> tuple[bool | None, str]:
    """Whether the job converged and, when it did not, the run's note saying how far it is; None where it
    cannot be told: no exact optimum, none finite, or a job that did not finish."""
    if problem is None or options is None or result.status != OK:
        return None, ""
    optimum = exact_optimum(problem, options)
    if optimum is None or optimum.status != OK or not optimum.params:  # none, or a baseline (an AR model's)
        return None, ""
    note = convergence_note(result, optimum)
    return not note, note


def against_best(rows: list[dict[str, Any]], settings: list[str]) -> list[dict[str, Any]]:
    """The rows, each finished job whose convergence is unknown held to the lowest training loss reached by
    a job of the same seed, data and objective: not converged when, by the run's rule, it ends more than
    NOT_CONVERGED above it and more than NOT_CONVERGED_PATH of the way from its start to it."""
    same = [name for name in settings if name not in HOW_TRAINED]

    def problem(row: dict[str, Any]) -> tuple[Any, ...]:
        return (*(row.get(name) for name in same), row["seed"])

    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        loss = _finite(row.get("final_train_loss"))
        if row["status"] == OK and loss is not None and (
                problem(row) not in best or loss < best[problem(row)]["final_train_loss"]):
            best[problem(row)] = row
    found = []
    for row in rows:
        lowest = best.get(problem(row))
        reached = _finite(row.get("final_train_loss"))
        if row.get("converged") is None and row["status"] == OK and lowest is not None and reached is not None:
            floor, start = lowest["final_train_loss"], _finite(row.get("initial_loss"))
            gap = reached - floor
            if gap > NOT_CONVERGED * floor and gap > NOT_CONVERGED_PATH * ((start or math.inf) - floor):
                where = " ".join(f"{name}={lowest.get(name)}" for name in settings
                                 if name in HOW_TRAINED and lowest.get(name) != row.get(name))
                row = {**row, "converged": False, "note": f"not converged: training loss {reached:.4g} against "
                       f"{floor:.4g} reached by {lowest['backend']} at {where or 'this point'}"}
        found.append(row)
    return found


def _finite(value: Any) -> float | None:
    """A loss as a number, None where there is none: a cache entry's null, or what a broken entry holds."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value) else None
