"""Parity verdicts: whether two backends that trained from the same start agree within the tolerance their
dtype allows (widened only by the named allowances that concern them), and by how many times it they
differ when they do not. The tolerance is at the scale of what is compared: atol + rtol · the largest
parameter (for the parameters) or step loss (for the step losses) of the pair.

A pair beyond its tolerance is then held against the run's own rounding noise (comparison.noise: numpy's
float32 run against its float64 shadow, or a float64 run against its one-ulp twin, on the same problem):
where a trajectory amplifies rounding (Adam at lr 0.1 over thousands of MLP steps takes correct backends
O(1) apart, float64 included) a difference within NOISE_MARGIN times that noise cannot be told from it,
and only one above it is reported "above noise" and fails --check."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from ..backends import RowName
from ..backends.tolerances import allowed_tolerance, applicable
from .metrics import largest_difference, largest_magnitude, step_loss_difference
from .run import OK, BackendResult

WITHIN = "within tolerance"
# A pair differs within the run's noise up to this many times it: two correct backends can each be as far
# from the exact trajectory as rounding takes numpy (2× between them), and one sample of a trajectory that
# amplifies rounding is a rough measure of it (benchmarks/NOISE.md: correct pairs on a 5200-step Adam MLP
# at up to 4.9× numpy's float32 noise).
NOISE_MARGIN = 10.0
Noise = Callable[[], tuple[BackendResult, BackendResult]]  # the two runs whose difference is the run's noise


def pair_verdict(a: BackendResult, b: BackendResult, dtype: str, optimizer: str,
                 noise: Noise | None = None, layers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The pair's ratio to its tolerance (the worse of parameters and step losses), the verdict in words, the
    tolerance it was held to (the dtype, and each allowance applied, by name) and, for a pair beyond it when
    `noise` is given, the run's rounding noise as a ratio to the same tolerance (NaN when not measured,
    or when a run of it did not finish). `layers`: the model's layer labels, for allowances of one layer."""
    pair = [RowName.parse(a.backend).backend, RowName.parse(b.backend).backend]  # rows may be NAME@LABEL:MODE
    names = applicable(dtype, pair, optimizer, layers)  # (allowed_tolerance takes backend names only)
    tolerance = allowed_tolerance(dtype, pair, names)
    ratio = tolerance_ratio(a, b, tolerance)
    runs = noise() if noise is not None and ratio > 1 else ()  # a diverged one measures no noise: its inf
    noise_ratio = tolerance_ratio(*runs, tolerance) if runs and all(r.status == OK for r in runs) else math.nan
    return {"tolerance_ratio": ratio, "noise_ratio": noise_ratio, "verdict": verdict_words(ratio, noise_ratio),
            "tolerance": " + ".join([dtype, *names])}


def tolerance_ratio(a: BackendResult, b: BackendResult, tolerance: Mapping[str, float]) -> float:
    """The pair's largest difference over `tolerance` at its scale, the worse of parameters and step losses."""
    allowed_params = tolerance["atol"] + tolerance["rtol"] * largest_magnitude([*a.params.values(),
                                                                                 *b.params.values()], 0.0)
    allowed_losses = tolerance["atol"] + tolerance["rtol"] * largest_magnitude([a.step_losses, b.step_losses], 0.0)
    ratios = [largest_difference(a.params, b.params) / allowed_params,
              step_loss_difference(a, b) / allowed_losses if a.steps == b.steps and a.steps else math.nan]
    return max((r for r in ratios if not math.isnan(r)), default=math.nan)


def within_noise(ratio: float, noise_ratio: float) -> bool:
    """Whether a difference beyond tolerance lies within the run's measured noise (False when not measured)."""
    return not math.isnan(noise_ratio) and ratio <= NOISE_MARGIN * noise_ratio


def verdict_words(ratio: float, noise_ratio: float = math.nan) -> str:
    if math.isnan(ratio):
        return "nothing to compare"
    if ratio <= 1:
        return WITHIN
    if math.isnan(noise_ratio):
        return f"{ratio:.3g}× tolerance"
    return f"{ratio:.3g}× tolerance, {'within' if within_noise(ratio, noise_ratio) else 'above'} noise " \
           f"({noise_ratio:.2g}×)"


class Worst(NamedTuple):
    """A pair at its worst seed: its ratio to the tolerance, the noise measured there, and whether any seed
    took it beyond its tolerance and above that seed's noise."""

    ratio: float
    noise_ratio: float
    above_noise: bool


def _ratio(row: Mapping[str, Any], key: str) -> float:
    """A row's ratio; NaN where it has none (a record writes NaN as None: a pair within tolerance beside one
    beyond it has no noise_ratio)."""
    value = row.get(key)
    return math.nan if value is None else float(value)


def worst_pairs(per_seed: Iterable[Iterable[Mapping[str, Any]]]) -> dict[tuple[str, str], Worst]:
    """Each pair's largest ratio to its tolerance over the seeds (rows as records: NaN as None)."""
    worst: dict[tuple[str, str], Worst] = {}
    for rows in per_seed:
        for row in rows:
            pair, ratio = (row["backend_a"], row["backend_b"]), _ratio(row, "tolerance_ratio")
            if math.isnan(ratio):
                continue
            noise_ratio = _ratio(row, "noise_ratio")
            above = ratio > 1 and not within_noise(ratio, noise_ratio)
            before = worst.get(pair)
            if before is None or ratio > before.ratio:
                worst[pair] = Worst(ratio, noise_ratio, above or (before is not None and before.above_noise))
            elif above:
                worst[pair] = before._replace(above_noise=True)
    return worst


def _listed(pairs: list[tuple[tuple[str, str], Worst]]) -> str:
    words = [f"{a}–{b} {verdict_words(worst.ratio, worst.noise_ratio)}" for (a, b), worst in pairs[:5]]
    return "; ".join(words) + ("; …" if len(pairs) > 5 else "")


def summary(worst: Mapping[tuple[str, str], Worst]) -> dict[str, Any]:
    """The verdict over every pair: how many, which are beyond their tolerance and above noise (worst first:
    what --check fails on), which beyond it within the run's noise, and a line."""
    ranked = sorted(worst.items(), key=lambda item: -item[1].ratio)
    beyond = [(pair, found) for pair, found in ranked if found.above_noise]
    noisy = [(pair, found) for pair, found in ranked if found.ratio > 1 and not found.above_noise]
    plural = "s" if len(worst) > 1 else ""
    if not worst:
        line = "no pair of backends to compare"
    elif beyond:
        line = f"{len(beyond)} of {len(worst)} pair{plural} of backends beyond tolerance: {_listed(beyond)}"
    elif not noisy:
        line = f"all {len(worst)} pairs of backends within tolerance" if plural else \
            "the pair of backends is within tolerance"
    else:
        line = "no pair of backends above noise"
    if noisy:
        line += (f"{'; ' if beyond else ': '}{len(noisy)} of {len(worst)} pair{plural} beyond tolerance but within"
                 f" this run's rounding noise, where no difference can be told from rounding (fewer steps can): "
                 f"{_listed(noisy)}")
    return {"pairs": len(worst), "beyond": [{"backend_a": a, "backend_b": b, "tolerance_ratio": found.ratio}
                                            for (a, b), found in beyond],
            "within_noise": [{"backend_a": a, "backend_b": b, "tolerance_ratio": found.ratio,
                              "noise_ratio": found.noise_ratio} for (a, b), found in noisy], "line": line}
