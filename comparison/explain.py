"""Where and why two backends part ways: the first step that differs beyond the dtype's tolerance, then,
from the same parameters, optimiser state and batch, the first stage that differs (forward activations
layer by layer, loss, gradient, update, optimiser state), the layer or parameter, and a likely cause."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..backends import Backend
from ..backends.errors import error_line
from ..backends.tolerances import TOLERANCES
from ..optimizers.training import described
from ..tasks import Problem
from .mechanisms import Difference, Pairs, Step, cause, normwise, worst

STAGES = ("forward", "statistics", "loss", "gradient", "update", "state")
FLOAT32_ULPS = 4  # a float64 replay's difference beyond this many float32 ulps of its stage's scale: a computation
ROUNDING = ("every stage agrees from the same start: rounding accumulated over the steps before it (the "
            "trajectories drift apart; no computation differs)")


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
    replayed: str = ""  # float32: what replaying the step in float64 found (a computation, or rounding)
    settled: bool = False  # its first step beyond tolerance has been looked at: no need to follow it further
    replay: dict[str, Any] = field(default_factory=dict, repr=False)  # the step's start, for a repro

    def record(self) -> dict[str, Any]:
        found = asdict(self)
        found.pop("replay")
        found.pop("settled")
        return found


def _of_tolerance(actual: np.ndarray, expected: np.ndarray, dtype: str) -> float:
    """The largest difference as a fraction of the dtype's tolerance there (1: at the limit)."""
    tolerance = TOLERANCES[dtype]
    expected = np.asarray(expected, np.float64)
    difference = np.abs(np.asarray(actual, np.float64) - expected)
    return float(np.max(difference / (tolerance["atol"] + tolerance["rtol"] * np.abs(expected)))) \
        if difference.size else 0.0


def _snapshot(backend: Backend) -> dict[str, Any]:
    return {"params": backend.get_params(), "state": backend.get_optimizer_state(), "layers": backend.get_state()}


class Explainer:
    """Runs two or more backends in lock step from the problem's shared start, one batch at a time."""

    def __init__(self, problem: Problem, backends: Mapping[str, Backend], options: Mapping[str, Any]) -> None:
        lacking = [name for name, backend in backends.items() if not backend.replay]
        if lacking:  # asked of the declaration up front, not found missing at the first differing step
            raise NotImplementedError(f"explain replays steps with hooks the {' and '.join(lacking)} backend"
                             f"{'s do' if len(lacking) > 1 else ' does'} not declare (Backend.replay, see "
                             "backends/base.py); compare it with compare.py instead")
        self.problem, self.backends, self.options = problem, dict(backends), dict(options)
        self.dtype = str(options.get("dtype", "float32"))
        self._twins: dict[str, Backend] = {}  # float64 models of the backends, for replaying a float32 step

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
                after = {name: {**backend.get_params(), **backend.get_state()}  # running statistics too
                         for name, backend in self.backends.items()}
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
        finding.largest = max(finding.largest, relative)
        finding.replay = {"batch": np.asarray(batch), **start}
        pair = [self.backends[finding.backend_a], self.backends[finding.backend_b]]
        now = [_snapshot(backend) for backend in pair]  # the other pairs go on from where these are
        try:
            found = self._localise(finding, pair[0], pair[1], self.dtype) is not None
            if not found and self.dtype == "float32":
                found = self._in_float64(finding)
            finding.agree = not found
        finally:
            for backend, snapshot in zip(pair, now, strict=True):
                _restore(backend, snapshot)
        finding.settled = True

    def _in_float64(self, finding: Finding) -> bool:
        """Every float32 stage agrees within float32's tolerance from the step's start: replay that start in
        float64 on float64 models of both, so rounding no longer hides what each computes. A stage that differs
        there by more than a few float32 ulps of its scale is a computation that differs, below the tolerance per
        step and added up over the steps; one that differs by less, or none, is rounding."""
        try:
            a, b = (self._float64(name) for name in (finding.backend_a, finding.backend_b))
            stages = self._localise(finding, a, b, "float64")
        except Exception as err:  # a backend of one's own whose float64 step fails: what it says, not a traceback
            finding.replayed = (f"the step could not be replayed in float64 ({error_line(err)}), so rounding cannot "
                                "be told from a difference below float32's tolerance")
            return False  # finding.cause: ROUNDING, as the float32 replay left it
        eps = float(np.finfo(np.float32).eps)
        if stages is None:
            finding.replayed = ("replayed in float64 from the same start, every stage agrees within float64's "
                                "tolerance too: float32 rounding")
            return False
        apart = normwise(stages[finding.stage or ""])
        # A hyper-parameter rounded to float32 (MXNet's lr, its 1/batch) moves a step by about one float32 ulp at
        # most, two such by two, and a float32 run rounds them alike: only more than that is a computation.
        if apart <= FLOAT32_ULPS * eps:
            finding.replayed = (f"replayed in float64 from the same start, the {finding.stage} differs by only "
                                f"{apart:.3g} of its scale ({apart / eps:.2g} float32 ulp), what rounding "
                                f"hyper-parameters to float32 does: {finding.cause}; a float32 run rounds them too, "
                                "so float32 rounding")
            finding.stage, finding.difference, finding.cause = None, None, ROUNDING
            return False
        finding.replayed = (f"every float32 stage agrees within float32's tolerance from the same start; replayed in "
                            f"float64 from that start, the {finding.stage} differs by {apart:.3g} of its scale "
                            f"({apart / eps:.3g} float32 ulp): a computation differs, below the tolerance per step, "
                            "and adds up over the steps — not rounding")
        return True

    def _float64(self, name: str) -> Backend:
        """A float64 model of backend `name` (its class and options), loaded with the run's rows."""
        if name not in self._twins:
            backend = self.backends[name]
            options: dict[str, Any] = {**backend.options_, "dtype": "float64", "mode": backend.mode}
            twin = type(backend)(backend.spec, **options)
            twin.load(self.problem.X_train.astype(np.float64), self.problem.y_train.astype(np.float64))
            self._twins[name] = twin
        return self._twins[name]

    def _localise(self, finding: Finding, a: Backend, b: Backend, dtype: str) -> dict[str, Pairs] | None:
        """From the step's start (backend_a's parameters and optimiser state), the first stage that differs
        beyond `dtype`'s tolerance, set on `finding`; every stage compared when one does, None when none does."""
        replay = finding.replay
        rows = replay["batch"]
        X, y = self.problem.X_train[rows].astype(dtype), self.problem.y_train[rows].astype(dtype)
        for backend in (a, b):
            _restore(backend, replay)
        acts_a, acts_b = a.forward_activations(X), b.forward_activations(X)
        loss_a, grads_a = a.loss_and_grads(X, y)
        loss_b, grads_b = b.loss_and_grads(X, y)
        update_a, state_a = a.update_for(replay["batch"])
        update_b, state_b = b.update_for(replay["batch"])
        stages: dict[str, Pairs] = {
            "forward": {self._layer_name(i): (x, z) for i, (x, z) in enumerate(zip(acts_a, acts_b, strict=True))},
            "statistics": {key: (value, state_b["layers"][key]) for key, value in state_a.get("layers", {}).items()},
            "loss": {"loss": (np.array(loss_a), np.array(loss_b))},
            "gradient": {key: (grads_a[key], grads_b[key]) for key in grads_a},
            "update": {key: (update_a[key], update_b[key]) for key in update_a},
            "state": _state_pairs(state_a, state_b),
        }
        for stage in STAGES:
            if stage == "forward":  # the first layer that differs: the later ones inherit it
                difference = next(filter(None, (worst({key: pair}, dtype) for key, pair in stages[stage].items())),
                                  None)
            else:
                difference = worst(stages[stage], dtype)
            if difference is not None:
                finding.stage, finding.difference = stage, self._with_part(difference)
                finding.cause = cause(stage, Step(finding.backend_a, finding.backend_b, stages, replay["params"],
                                                  replay["state"], len(replay["batch"]), self.options, dtype,
                                                  list(self.problem.spec), replay.get("layers", {})))
                return stages
        finding.cause = ROUNDING
        return None

    def _with_part(self, difference: Difference) -> Difference:
        """The difference with the part of its layer it lies in, where the layer says one (an LSTM's gate)."""
        name, _, rest = difference.where.partition("[")
        position, _, short = name.rpartition("/")[2].partition(".")  # an optimiser state's: "m/1.bias_ih"
        if not position.isdigit() or not rest or int(position) >= len(self.problem.spec):
            return difference
        holder, inner = self.problem.spec[int(position)].holder(short)
        part = holder.element_part(inner, tuple(int(i) for i in rest.rstrip("]").split(",")))
        return dataclasses.replace(difference, where=f"{difference.where} ({part})") if part else difference

    def _layer_name(self, index: int) -> str:
        return f"layer {index} ({self.problem.spec[index].label}) output"


def _restore(backend: Backend, snapshot: Mapping[str, Any]) -> None:
    """Parameters, optimiser state and the layers' running statistics as `snapshot` holds them."""
    backend.set_params(snapshot["params"])
    backend.set_optimizer_state(snapshot["state"])
    if snapshot.get("layers"):
        backend.set_state(snapshot["layers"])


def _state_pairs(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Canonical optimiser states side by side: the step count and every moment by parameter."""
    pairs = {"step": (np.array(float(a.get("step", 0))), np.array(float(b.get("step", 0))))}
    for kind in (kind for kind in a if kind != "step"):  # the optimiser's kinds (optimizers/training.STATE_KINDS)
        for key in a[kind]:
            pairs[f"{kind}/{key}"] = (a[kind][key], b[kind][key])
    return pairs


# ---- rendering ----

def _before(finding: Finding) -> str:
    return "at the first step" if finding.step == 1 else f"{finding.drift:.3g} of it at most over the steps before it"


def finding_lines(finding: Finding) -> list[str]:
    pair = f"{finding.backend_a} vs {finding.backend_b}"
    if finding.agree and finding.step is None:
        return [f"{pair}: agree (largest difference {finding.largest:.3g} of the tolerance)"]
    if finding.agree:
        checked = f" ({finding.replayed})" if finding.replayed else ""  # float32: what the float64 replay found
        return [f"{pair}: agree to rounding: beyond the tolerance from step {finding.step} ({finding.jump:.3g} of it, "
                f"{_before(finding)}), yet {finding.cause}{checked}"]
    if finding.stage is None:  # nothing compared at the step: the run diverged
        return [f"{pair}: {finding.cause}"]
    lines = [f"{pair}: differ from step {finding.step} ({finding.jump:.3g} of the tolerance at it, {_before(finding)})"]
    if finding.replayed:
        lines.append(f"  {finding.replayed}")
    if finding.difference is not None:
        d, dtype = finding.difference, " (float64 replay)" if finding.replayed else ""
        lines.append(f"  first stage that differs from the same start{dtype}: {finding.stage}, at {d.where}: "
                     f"{d.a:.17g} vs {d.b:.17g} (abs {d.abs_diff:.3g}, rel {d.rel_diff:.3g}, {d.ulps:.3g} ulp)")
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
    title = (f"explain · task {header['task']} · {options['dtype']} · {options['optimizer']} lr={options['lr']:g}"
             f"{described(options)} · loss {options['loss']} · batch {header['settings']['batch_size']} · tolerance "
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
