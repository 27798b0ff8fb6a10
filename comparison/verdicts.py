"""Parity verdicts: whether two backends that trained from the same start agree within the tolerance their
dtype allows (widened only by the named allowances that concern them), and by how many times it they
differ when they do not. The tolerance is at the scale of what is compared: atol + rtol · the largest
parameter (for the parameters) or step loss (for the step losses) of the pair."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..backends.tolerances import allowed_tolerance, applicable
from .metrics import largest_difference, step_loss_difference
from .run import BackendResult

WITHIN = "within tolerance"


def _largest(values: Iterable[np.ndarray]) -> float:
    finite = [np.abs(v[np.isfinite(v)]) for v in (np.ravel(value) for value in values)]
    return max((float(v.max()) for v in finite if v.size), default=0.0)


def pair_verdict(a: BackendResult, b: BackendResult, dtype: str, optimizer: str) -> dict[str, Any]:
    """The pair's ratio to its tolerance (the worse of parameters and step losses), the verdict in words and
    the tolerance it was held to (the dtype, and each allowance applied, by name)."""
    names = applicable(dtype, [a.backend, b.backend], optimizer)
    tolerance = allowed_tolerance(dtype, [_backend(a.backend), _backend(b.backend)], names)
    allowed_params = tolerance["atol"] + tolerance["rtol"] * _largest([*a.params.values(), *b.params.values()])
    allowed_losses = tolerance["atol"] + tolerance["rtol"] * _largest([a.step_losses, b.step_losses])
    ratios = [largest_difference(a.params, b.params) / allowed_params,
              step_loss_difference(a, b) / allowed_losses if a.steps == b.steps and a.steps else math.nan]
    ratio = max((r for r in ratios if not math.isnan(r)), default=math.nan)
    return {"tolerance_ratio": ratio, "verdict": verdict_words(ratio),
            "tolerance": " + ".join([dtype, *names])}


def _backend(row: str) -> str:
    return row.partition(":")[0].partition("@")[0]


def verdict_words(ratio: float) -> str:
    if math.isnan(ratio):
        return "nothing to compare"
    return WITHIN if ratio <= 1 else f"{ratio:.3g}× tolerance"


def worst_pairs(per_seed: Iterable[Iterable[Mapping[str, Any]]]) -> dict[tuple[str, str], float]:
    """Each pair's largest ratio to its tolerance over the seeds."""
    worst: dict[tuple[str, str], float] = {}
    for rows in per_seed:
        for row in rows:
            pair, ratio = (row["backend_a"], row["backend_b"]), float(row.get("tolerance_ratio", math.nan))
            if not math.isnan(ratio):
                worst[pair] = max(ratio, worst.get(pair, ratio))
    return worst


def summary(worst: Mapping[tuple[str, str], float]) -> dict[str, Any]:
    """The verdict over every pair: how many, which are beyond their tolerance (worst first), and a line."""
    beyond = sorted(((pair, ratio) for pair, ratio in worst.items() if ratio > 1), key=lambda item: -item[1])
    if not worst:
        line = "no pair of backends to compare"
    elif not beyond:
        line = (f"all {len(worst)} pairs of backends within tolerance" if len(worst) > 1
                else "the pair of backends is within tolerance")
    else:
        listed = "; ".join(f"{a}–{b} {ratio:.3g}× tolerance" for (a, b), ratio in beyond[:5])
        line = (f"{len(beyond)} of {len(worst)} pair{'s' if len(worst) > 1 else ''} of backends beyond tolerance: "
                f"{listed}{'; …' if len(beyond) > 5 else ''}")
    return {"pairs": len(worst), "beyond": [{"backend_a": a, "backend_b": b, "tolerance_ratio": ratio}
                                            for (a, b), ratio in beyond], "line": line}
