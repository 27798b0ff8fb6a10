"""Whether a sweep's job converged, by the rule a run's note applies (fits.convergence_note): its training
loss against the exact optimum of its own objective on its own training split, which is solved once per
problem and objective; unknown (None) for a model without an exact optimum."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from ..tasks import Problem
from .fits import convergence_note
from .run import OK, BackendResult, reference_result

MOST_KEPT = 8  # optima kept: a sweep's jobs of one point and seed share one
_optima: OrderedDict[tuple[Any, ...], tuple[Problem, BackendResult | None]] = OrderedDict()
_lock = threading.Lock()


def exact_optimum(problem: Problem, options: dict[str, Any]) -> BackendResult | None:
    """The exact optimum's row for the problem and the objective `options` give (None for other models)."""
    key = (id(problem), *(options.get(name) for name in ("dtype", "loss", "huber_delta", "weight_decay")))
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
    if optimum is None or optimum.status != OK:
        return None, ""
    note = convergence_note(result, optimum)
    return not note, note
