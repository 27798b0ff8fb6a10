"""Parity verdicts: whether two backends that trained from the same start agree within the tolerance their
dtype allows (widened only by the named allowances that concern them), and by how many times it they
differ when they do not. The tolerance is at the scale of what is compared: atol + rtol · the largest
parameter (for the parameters) or step loss (for the step losses) of the pair."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..backends import RowName
from ..backends.tolerances import allowed_tolerance, applicable
from .metrics import largest_difference, largest_magnitude, step_loss_difference
from .run import BackendResult

WITHIN = "within tolerance"


def pair_verdict(a: BackendResult, b: BackendResult, dtype: str, optimizer: str) -> dict[str, Any]:
    """The pair's ratio to its tolerance (the worse of parameters and step losses), the verdict in words and
    the tolerance it was held to (the dtype, and each allowance applied, by name)."""
    pair = [RowName.parse(a.backend).backend, RowName.parse(b.backend).backend]  # rows may be NAME@LABEL:MODE
    names = applicable(dtype, pair, optimizer)  # (allowed_tolerance takes backend names only)
    tolerance = allowed_tolerance(dtype, pair, names)
    allowed_params = tolerance["atol"] + tolerance["rtol"] * largest_magnitude([*a.params.values(),
                                                                                 *b.params.values()], 0.0)
    allowed_losses = tolerance["atol"] + tolerance["rtol"] * largest_magnitude([a.step_losses, b.step_losses], 0.0)
    ratios = [largest_difference(a.params, b.params) / allowed_params,
              step_loss_difference(a, b) / allowed_losses if a.steps == b.steps and a.steps else math.nan]
    ratio = max((r for r in ratios if not math.isnan(r)), default=math.nan)
    return {"tolerance_ratio": ratio, "verdict": verdict_words(ratio),
            "tolerance": " + ".join([dtype, *names])}


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
