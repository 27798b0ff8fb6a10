"""Where and why two backends part ways: the first step that differs beyond the dtype's tolerance, then,
from the same parameters, optimiser state and batch, the first stage that differs (forward activations
layer by layer, loss, gradient, update, optimiser state), the layer or parameter, and a likely cause."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..backends import Backend
from ..backends.tolerances import TOLERANCES
from ..layers import Activation
from ..tasks import Problem

STAGES = ("forward", "loss", "gradient", "update", "state")
ADAM_BETA2 = 0.999


@dataclass
class Difference:
    """The worst element of one compared quantity: where, how far apart, and in ulps of the dtype."""

    where: str
    a: float
    b: float
    abs_diff: float
    rel_diff: float
    ulps: float


@dataclass
class Finding:
    backend_a: str
    backend_b: str
    agree: bool
    step: int | None = None  # the first optimiser step (from 1) whose loss or parameters differ
    drift: float = 0.0  # the largest relative difference over the steps before it
    jump: float = 0.0  # the relative difference at it
    stage: str | None = None  # the first stage that differs from the same start, or None: only drift
    difference: Difference | None = None
    cause: str = ""
    largest: float = 0.0  # the largest difference seen, as a fraction of the dtype's tolerance
    settled: bool = False  # its first step beyond tolerance has been looked at: no need to follow it further
    replay: dict[str, Any] = field(default_factory=dict, repr=False)  # the step's start, for a repro

    def record(self) -> dict[str, Any]:
        found = asdict(self)
        found.pop("replay")
        found.pop("settled")
        return found


def _excess(actual: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    tolerance = TOLERANCES[dtype]
    return np.abs(actual - expected) - (tolerance["atol"] + tolerance["rtol"] * np.abs(expected))


def _of_tolerance(actual: np.ndarray, expected: np.ndarray, dtype: str) -> float:
    """The largest difference as a fraction of the dtype's tolerance there (1: at the limit)."""
    tolerance = TOLERANCES[dtype]
    expected = np.asarray(expected, np.float64)
    difference = np.abs(np.asarray(actual, np.float64) - expected)
    return float(np.max(difference / (tolerance["atol"] + tolerance["rtol"] * np.abs(expected)))) \
        if difference.size else 0.0


def worst(named: Mapping[str, tuple[np.ndarray, np.ndarray]], dtype: str) -> Difference | None:
    """The element furthest beyond the dtype's tolerance over every named (a, b) pair; None when none is."""
    found, furthest = None, 0.0
    for name, (a, b) in named.items():
        a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
        excess = _excess(b64, a64, dtype)
        if excess.size and float(excess.max()) > furthest:
            index = np.unravel_index(int(np.argmax(excess)), excess.shape)
            furthest = float(excess.max())
            x, y = float(a64[index]), float(b64[index])
            label = name + (f"[{','.join(map(str, index))}]" if a64.ndim else "")
            tiny = float(np.finfo(np.float64).tiny)
            ulp = float(np.spacing(np.asarray(abs(x), dtype=dtype)))  # one unit in the last place of x, in the dtype
            found = Difference(label, x, y, abs(y - x), abs(y - x) / max(abs(x), tiny), abs(y - x) / ulp)
    return found


def _snapshot(backend: Backend) -> dict[str, Any]:
    return {"params": backend.get_params(), "state": backend.get_optimizer_state()}


def _ratios(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> np.ndarray:
    """b / a element by element, where a is not zero."""
    pairs = [(np.ravel(a[key]), np.ravel(b[key])) for key in a]
    x = np.concatenate([p[0] for p in pairs]) if pairs else np.empty(0)
    y = np.concatenate([p[1] for p in pairs]) if pairs else np.empty(0)
    keep = np.abs(x) > 0
    return np.asarray(y[keep] / x[keep], dtype=np.float64)


def _constant_factor(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], dtype: str) -> float | None:
    """The factor c with b = c·a for every element, when there is one (within the dtype's tolerance)."""
    ratios = _ratios(a, b)
    if not ratios.size:
        return None
    factor = float(np.median(ratios))
    spread = float(np.max(np.abs(ratios - factor)))
    return factor if spread <= 10 * TOLERANCES[dtype]["rtol"] * abs(factor) + 1e-15 else None


def _float32(value: float) -> float:
    return float(np.float32(value))


class Explainer:
    """Runs two or more backends in lock step from the problem's shared start, one batch at a time."""

    def __init__(self, problem: Problem, backends: Mapping[str, Backend], options: Mapping[str, Any]) -> None:
        lacking = [name for name, backend in backends.items() if not backend.replay]
        if lacking:  # asked of the declaration up front, not found missing at the first differing step
            raise NotImplementedError(f"explain replays steps with hooks the {' and '.join(lacking)} backend"
                             f"{'s do' if len(lacking) > 1 else ' does'} not declare (Backend.replay, see "
                             "backends/base.py); compare it with compare.py instead")
        stateful = [f"layer {index} {layer.describe()}" for index, layer in enumerate(problem.spec) if layer.state()]
        if stateful:  # a step's replay restores parameters and optimiser state, not yet the layers' own state
            raise NotImplementedError(f"explain does not yet replay models whose layers keep running statistics "
                                      f"({', '.join(stateful)}); compare them with compare.py")
        self.problem, self.backends, self.options = problem, dict(backends), dict(options)
        self.dtype = str(options.get("dtype", "float32"))

    def run(self) -> list[Finding]:
        with np.errstate(all="ignore"):  # a diverging run is reported as such, not warned about
            return self._run()

    def _run(self) -> list[Finding]:
        names = list(self.backends)
        for backend in self.backends.values():
            backend.set_params(self.problem.initial_params)
            backend.load(self.problem.X_train, self.problem.y_train, copy=False)
        open_pairs = {pair: Finding(*pair, agree=True) for pair in itertools.combinations(names, 2)}
        step = 0
        for batches in self.problem.epoch_batches:
            for batch in batches:
                if all(f.settled for f in open_pairs.values()):
                    return list(open_pairs.values())
                step += 1
                before = {name: _snapshot(backend) for name, backend in self.backends.items()}
                losses = {name: backend.step(batch) for name, backend in self.backends.items()}
                after = {name: backend.get_params() for name, backend in self.backends.items()}
                for (a, b), finding in open_pairs.items():
                    if not finding.settled:
                        self._compare_step(finding, step, batch, before[a], losses[a], losses[b], after[a], after[b])
        return list(open_pairs.values())

    def _compare_step(self, finding: Finding, step: int, batch: np.ndarray, start: dict[str, Any], loss_a: float,
                      loss_b: float, params_a: Mapping[str, np.ndarray], params_b: Mapping[str, np.ndarray]) -> None:
        named = {"step loss": (np.array(loss_a), np.array(loss_b)),
                 **{key: (params_a[key], params_b[key]) for key in params_a}}
        broken = [name for name, values in ((finding.backend_a, [np.array(loss_a), *params_a.values()]),
                                            (finding.backend_b, [np.array(loss_b), *params_b.values()]))
                  if not all(np.isfinite(value).all() for value in values)]
        if broken:  # nothing left to compare: the run itself failed
            finding.agree, finding.settled, finding.step = False, True, step
            finding.cause = f"the run diverged at step {step}: a non-finite loss or parameter in {' and '.join(broken)}"
            return
        relative = max(_of_tolerance(b, a, self.dtype) for a, b in named.values())
        if relative <= 1:
            finding.largest = max(finding.largest, relative)
            return
        finding.step, finding.drift, finding.jump = step, finding.largest, relative
        finding.replay = {"batch": np.asarray(batch), **start}
        pair = [self.backends[finding.backend_a], self.backends[finding.backend_b]]
        now = [_snapshot(backend) for backend in pair]  # the other pairs go on from where these are
        try:
            finding.agree = not self._localise(finding)  # no stage differs: rounding that accumulated
        finally:
            for backend, snapshot in zip(pair, now, strict=True):
                backend.set_params(snapshot["params"])
                backend.set_optimizer_state(snapshot["state"])
        finding.settled = True

    def _localise(self, finding: Finding) -> bool:
        """From the step's start (backend_a's parameters and optimiser state), the first stage that differs;
        False when none does."""
        a, b = self.backends[finding.backend_a], self.backends[finding.backend_b]
        replay = finding.replay
        X, y = self.problem.X_train[replay["batch"]], self.problem.y_train[replay["batch"]]
        for backend in (a, b):
            backend.set_params(replay["params"])
            backend.set_optimizer_state(replay["state"])
        acts_a, acts_b = a.forward_activations(X), b.forward_activations(X)
        forward = {self._layer_name(i): (x, z) for i, (x, z) in enumerate(zip(acts_a, acts_b, strict=True))}
        loss_a, grads_a = a.loss_and_grads(X, y)
        loss_b, grads_b = b.loss_and_grads(X, y)
        update_a, state_a = a.update_for(replay["batch"])
        update_b, state_b = b.update_for(replay["batch"])
        stages = {
            "forward": forward,
            "loss": {"loss": (np.array(loss_a), np.array(loss_b))},
            "gradient": {key: (grads_a[key], grads_b[key]) for key in grads_a},
            "update": {key: (update_a[key], update_b[key]) for key in update_a},
            "state": _state_pairs(state_a, state_b),
        }
        for stage in STAGES:
            difference = worst(stages[stage], self.dtype)
            if difference is not None:
                finding.stage, finding.difference = stage, difference
                finding.cause = self._cause(stage, stages, finding)
                return True
        finding.cause = ("every stage agrees from the same start: rounding accumulated over the steps before it "
                         "(the trajectories drift apart; no computation differs)")
        return False

    def _layer_name(self, index: int) -> str:
        return f"layer {index} ({self.problem.spec[index].label}) output"

    def _cause(self, stage: str, stages: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], finding: Finding
               ) -> str:
        pairs = stages[stage]
        a = {key: np.asarray(x, np.float64) for key, (x, _) in pairs.items()}
        b = {key: np.asarray(z, np.float64) for key, (_, z) in pairs.items()}
        factor = _constant_factor(a, b, self.dtype)
        if stage == "forward":
            where = finding.difference.where if finding.difference else "a layer"
            return f"the forward pass differs first at {where}: the two compute that layer differently"
        if stage == "loss":
            if factor is not None and math.isclose(factor, 0.5, rel_tol=1e-6):
                return "loss differs by a factor 2 (b is half of a): half-MSE against MSE"
            if factor is not None and math.isclose(factor, 2.0, rel_tol=1e-6):
                return "loss differs by a factor 2 (b is twice a): MSE against half-MSE"
            return "the forward outputs agree, the loss on them does not: the loss functions differ"
        if stage == "gradient":
            return self._gradient_cause(a, b)
        if stage == "update":
            return self._update_cause(a, b, factor, stages["state"], finding)
        return "gradients and updates agree, the optimiser state after the step does not: its moments or step count"

    def _gradient_cause(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> str:
        differing = [key for key in a if worst({key: (a[key], b[key])}, self.dtype) is not None]
        if len(differing) == 1:
            factor = _constant_factor({differing[0]: a[differing[0]]}, {differing[0]: b[differing[0]]}, self.dtype)
            if factor is not None:
                return (f"only the gradient of {differing[0]} differs, by a constant factor {factor:.6g}: "
                        "that parameter's backward is scaled")
            return f"only the gradient of {differing[0]} differs: that parameter's backward"
        layers = sorted({int(key.split(".")[0]) for key in a})
        agreeing = [index for index in layers if not any(key.startswith(f"{index}.") for key in differing)]
        first_bad = max((int(key.split(".")[0]) for key in differing), default=None)
        if agreeing and first_bad is not None and min(agreeing) > first_bad:
            between = [index for index in range(first_bad + 1, min(agreeing))
                       if isinstance(self.problem.spec[index], Activation)]
            if between:
                name = self.problem.spec[between[-1]].label
                return (f"gradients agree from layer {min(agreeing)} on and differ before it: the backward of "
                        f"layer {between[-1]} ({name}), the activation's derivative")
        return f"the gradients of {', '.join(differing)} differ while the loss agrees: the backward pass"

    def _update_cause(self, a: dict[str, np.ndarray], b: dict[str, np.ndarray], factor: float | None,
                      state: dict[str, tuple[np.ndarray, np.ndarray]], finding: Finding) -> str:
        lr = float(self.options.get("lr", 0.0))
        adam = self.options.get("optimizer") == "adam"
        if adam:
            second = {key: pair for key, pair in state.items() if key.startswith("v/")}
            v_factor = _constant_factor({k: np.asarray(x, np.float64) for k, (x, _) in second.items()},
                                        {k: np.asarray(z, np.float64) for k, (_, z) in second.items()}, self.dtype)
            held = float((1 - np.float64(np.float32(ADAM_BETA2))) / (1 - ADAM_BETA2))
            for value, who in ((held, finding.backend_b), (1 / held, finding.backend_a)):
                # within 1 % of the effect: the batch's 1/size held in float32 as well moves g² by ~3e-8
                if v_factor is not None and abs(v_factor - value) <= 1e-2 * abs(held - 1):
                    return (f"gradients agree; Adam's second moment after the step differs by a factor "
                            f"1 {v_factor - 1:+.3g} = (1 − float32(β₂)) / (1 − β₂): β₂ = {ADAM_BETA2} is held in "
                            f"float32 by {who}")
        if factor is not None:
            rows = len(finding.replay["batch"])
            candidates = {  # what a constant factor near 1 comes from: hyper-parameters rounded to 32 bits
                f"float32({lr:g}) / {lr:g}: the learning rate is held in float32": _float32(lr) / lr,
                f"float32({lr:g})·float32(1/{rows}) / ({lr:g}/{rows}): the learning rate and the 1/batch-size "
                "gradient scale are held in float32": _float32(lr) * _float32(1 / rows) * rows / lr,
            }
            for why, held in candidates.items():
                for value, who in ((held, finding.backend_b), (1 / held, finding.backend_a)):
                    if held != 1 and abs(factor - value) <= 1e-3 * abs(held - 1):
                        return (f"every update differs by a constant factor 1 {factor - 1:+.3g}, which is {why} "
                                f"by {who}")
            return f"gradients agree, every update differs by a constant factor {factor:.9g}: a step size or scale"
        if adam and worst(state, self.dtype) is None:
            return ("gradients and the optimiser state after the step agree, the update does not, and not by one "
                    "factor: ε placement in Adam's bias correction (added to √v instead of √v̂)")
        return "gradients agree, the updates differ: the optimiser's update rule"


def _state_pairs(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Canonical optimiser states side by side: the step count and every moment by parameter."""
    pairs = {"step": (np.array(float(a.get("step", 0))), np.array(float(b.get("step", 0))))}
    for kind in ("velocity", "m", "v"):
        for key in a.get(kind, {}):
            pairs[f"{kind}/{key}"] = (a[kind][key], b[kind][key])
    return pairs


# ---- rendering ----

def finding_lines(finding: Finding) -> list[str]:
    pair = f"{finding.backend_a} vs {finding.backend_b}"
    if finding.agree and finding.step is None:
        return [f"{pair}: agree (largest difference {finding.largest:.2g} of the tolerance)"]
    if finding.agree:
        return [f"{pair}: agree to rounding: beyond the tolerance from step {finding.step} ({finding.jump:.2g} of it; "
                f"{finding.drift:.2g} before), yet {finding.cause}"]
    if finding.stage is None:  # nothing compared at the step: the run diverged
        return [f"{pair}: {finding.cause}"]
    lines = [f"{pair}: differ from step {finding.step} ({finding.jump:.2g} of the tolerance at it, "
             f"{finding.drift:.2g} at most over the steps before it)"]
    if finding.difference is not None:
        d = finding.difference
        lines.append(f"  first stage that differs from the same start: {finding.stage}, at {d.where}: {d.a:.17g} vs "
                     f"{d.b:.17g} (abs {d.abs_diff:.3g}, rel {d.rel_diff:.3g}, {d.ulps:.3g} ulp)")
    lines.append(f"  likely cause: {finding.cause}")
    return lines


def render_explained(header: dict[str, Any], findings: list[Finding], fmt: str) -> str:
    """The findings as text (table), one CSV row per pair, a Markdown table, or JSON with the header."""
    import json

    records = [finding.record() for finding in findings]
    if fmt == "csv":  # one row per pair, the difference's fields flattened
        import pandas as pd

        rows = [{**{k: v for k, v in record.items() if k != "difference"},
                 **{f"difference_{k}": v for k, v in (record["difference"] or {}).items()}} for record in records]
        return pd.DataFrame(rows).to_csv(index=False)
    if fmt == "json":
        return json.dumps({"format": "backend-compare explain", **header, "pairs": records}, indent=2,
                          allow_nan=False, default=float) + "\n"
    options = header["options"]
    title = (f"explain · task {header['task']} · {options['dtype']} · {options['optimizer']} lr={options['lr']:g} · "
             f"loss {options['loss']} · batch {header['settings']['batch_size']} · tolerance "
             f"rtol {TOLERANCES[options['dtype']]['rtol']:g}, atol {TOLERANCES[options['dtype']]['atol']:g}")
    if fmt == "markdown":
        lines = ["| pair | verdict | first step | stage | where | rel diff | ulp | likely cause |", "|---" * 8 + "|"]
        for f in findings:
            d = f.difference
            lines.append(f"| {f.backend_a} vs {f.backend_b} | {'agree' if f.agree else 'differ'} | "
                        f"{f.step or '-'} | {f.stage or '-'} | {d.where if d else '-'} | "
                        f"{(d.rel_diff if d else f.largest):.3g} | {d.ulps if d else 0:.3g} | {f.cause or '-'} |")
        return f"**{title}**\n\n" + "\n".join(lines) + "\n"
    return title + "\n\n" + "\n".join(line for finding in findings for line in finding_lines(finding)) + "\n"
