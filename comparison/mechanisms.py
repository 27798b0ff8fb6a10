"""Why two backends' step differs, read from the numbers of the first stage that does (compare.py explain):
each reader fits the difference against what a mechanism would leave — one factor on every element, zero
where the other moves, a term proportional to the weights, Adam's ε acting at another size — and names the
mechanism only when the fit holds; otherwise it names the stage and says no mechanism fits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.tolerances import TOLERANCES
from ..layers import Activation, Conv1d, Conv2d, Input, Layer
from ..optimizers.training import ADAM_BETAS, ADAM_EPS
from .epsilon import epsilon_in_root, rate

Pairs = dict[str, tuple[np.ndarray, np.ndarray]]  # a stage's quantities by name: (backend a's, backend b's)


@dataclass
class Difference:
    """The worst element of one compared quantity: where, how far apart, and in ulps of the dtype."""

    where: str
    a: float
    b: float
    abs_diff: float
    rel_diff: float
    ulps: float


def _excess(actual: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    tolerance = TOLERANCES[dtype]
    return np.abs(actual - expected) - (tolerance["atol"] + tolerance["rtol"] * np.abs(expected))


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


def normwise(pairs: Pairs) -> float:
    """max |b − a| over the largest |a|: how far apart a whole stage is, relative to its scale."""
    scale = max((float(np.max(np.abs(a))) for a, _ in pairs.values() if np.size(a)), default=0.0)
    apart = max((float(np.max(np.abs(np.asarray(b, np.float64) - a))) for a, b in pairs.values() if np.size(a)),
                default=0.0)
    return apart / scale if scale else (math.inf if apart else 0.0)


def flat(values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Every array's elements, in order, as one float64 vector."""
    arrays = [np.ravel(np.asarray(value, np.float64)) for value in values.values()]
    return np.concatenate(arrays) if arrays else np.empty(0)


def constant_factor(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], dtype: str) -> float | None:
    """The factor c with b = c·a for every element, when there is one (within the dtype's tolerance)."""
    x, y = flat(a), flat({key: b[key] for key in a})
    keep = np.abs(x) > 0
    if not keep.any() or np.any(np.abs(y[~keep]) > TOLERANCES[dtype]["atol"]):  # b moves where a is zero
        return None
    ratios = y[keep] / x[keep]
    factor = float(np.median(ratios))
    spread = float(np.max(np.abs(ratios - factor)))
    return factor if spread <= 10 * TOLERANCES[dtype]["rtol"] * abs(factor) + 1e-15 else None


def near_one(factor: float) -> str:
    """A factor close to 1 written so its sign survives: 1 − 7.45e-09."""
    offset = factor - 1
    return f"(1 {'+' if offset >= 0 else '−'} {abs(offset):.3g})"


def _close(value: float, target: float, rel: float) -> bool:
    return math.isclose(value, target, rel_tol=rel)


def _proportional(difference: np.ndarray, basis: np.ndarray, dtype: str, rel: float = 1e-3) -> float | None:
    """k with difference ≈ k·basis on at least three elements in four (Adam's sign-like update lets the elements
    whose gradient is near ε, or smaller than a decay term, fall off the line); None when no such k exists."""
    keep = np.abs(basis) > 0
    if keep.sum() < 2 or not np.any(difference):
        return None
    k = float(np.median(difference[keep] / basis[keep]))
    on_line = np.abs(difference - k * basis) <= rel * np.abs(k * basis) + TOLERANCES[dtype]["atol"]
    return k if k != 0 and float(on_line.mean()) >= 0.75 else None


@dataclass
class Step:
    """What two backends computed from the same start, stage by stage, and what that start was."""

    a: str
    b: str
    stages: dict[str, Pairs]
    params: Mapping[str, np.ndarray]  # the parameters at the step's start
    state: Mapping[str, Any]  # the canonical optimiser state at its start (step, velocity, m, v)
    rows: int  # the batch's size
    options: Mapping[str, Any]  # the run's hyper-parameters
    dtype: str
    spec: list[Layer]
    layers: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)  # running statistics at the start

    def sides(self, stage: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        pairs = self.stages[stage]
        return ({key: np.asarray(x, np.float64) for key, (x, _) in pairs.items()},
                {key: np.asarray(z, np.float64) for key, (_, z) in pairs.items()})

    def differing(self, stage: str) -> list[str]:
        return [key for key, pair in self.stages[stage].items() if worst({key: pair}, self.dtype) is not None]


def cause(stage: str, step: Step) -> str:
    """The likely cause of a difference first seen at `stage`, the mechanism named where the numbers fit one."""
    if stage == "forward":
        return forward_cause(step)
    if stage == "statistics":
        return statistics_cause(step)
    if stage == "loss":
        return loss_cause(step)
    if stage == "gradient":
        return gradient_cause(step)
    if stage == "update":
        return update_cause(step)
    return state_cause(step)


def forward_cause(step: Step) -> str:
    names = list(step.stages["forward"])
    index = names.index(step.differing("forward")[0])
    layer = step.spec[index]
    batch = index == 0 or (index == 1 and isinstance(step.spec[0], Input))  # an Input passes the batch on as it is
    fed = "the batch" if batch else f"layer {index - 1}'s output"
    text = (f"only layer {index} ({layer.describe()}) computes differently: its input ({fed}) agrees, its output "
            "does not")
    x, z = step.stages["forward"][names[index]]
    factor = constant_factor({"out": x}, {"out": z}, step.dtype)
    shift = np.asarray(z, np.float64) - x
    if factor is not None:
        return f"{text}, every output scaled by {factor:.6g}: that layer's forward is scaled"
    split = padding_split(step, index, names)
    if split is not None:
        return f"{text}: {split}"
    if shift.ndim == 2 and worst({"shift": (shift, np.broadcast_to(shift[:1], shift.shape))}, step.dtype) is None:
        return f"{text}, shifted by the same amount in every row: that layer's bias or offset differs"
    return f"{text}: that layer's forward"


def padding_split(step: Step, index: int, names: list[str]) -> str | None:
    """For a convolution whose padding is not the same on both sides ("same" with stride > 1 or an even kernel):
    whether b computes it with the extra row and column before instead of after."""
    layer = step.spec[index]
    if not isinstance(layer, Conv1d | Conv2d) or index == 0:
        return None
    fed, _ = step.stages["forward"][names[index - 1]]
    pads = layer.pads(np.shape(fed)[1:])
    swapped = tuple((after, before) for before, after in pads)
    if swapped == pads:
        return None
    params = {name: np.asarray(step.params[f"{index}.{name}"], np.float64) for name in layer.params()}
    moved = layer.forward_padded(params, np.asarray(fed, np.float64), swapped)[0]
    if worst({"out": (moved, step.stages["forward"][names[index]][1])}, step.dtype) is not None:
        return None
    return (f"{step.b} pads it {list(swapped)} (before, after per axis) where the canonical layer pads "
            f"{list(pads)}: the odd row and column of padding go before instead of after (TensorFlow, JAX and "
            "torch put them after)")


def statistics_cause(step: Step) -> str:
    """A BatchNorm's running statistics after the step, the forward agreeing: read the batch's statistic back from
    a's update (running ← m·running + (1 − m)·batch) and fit b's to another momentum or to the other variance."""
    key = max(step.differing("statistics"), key=lambda name: normwise({name: step.stages["statistics"][name]}))
    index, name = key.split(".", 1)
    layer = step.spec[int(index)].holder(name)[0]  # a block's branch layer holds its own statistics
    text = f"the forward agrees, layer {index}'s {name} after the step does not"
    momentum = getattr(layer, "momentum", None)
    if momentum is None or key not in step.layers:
        return f"{text}: how that layer updates its state"
    start = np.asarray(step.layers[key], np.float64)
    a, b = (np.asarray(side, np.float64) for side in step.stages["statistics"][key])
    batch = (a - momentum * start) / (1 - momentum)  # what a averaged in
    moved = np.abs(start - batch) > 1e-6 * np.maximum(np.abs(batch), 1e-12)
    if moved.any():
        kept = (b[moved] - batch[moved]) / (start[moved] - batch[moved])  # b = k·start + (1 − k)·batch
        k = float(np.median(kept))
        if float(np.max(np.abs(kept - k))) <= 1e-6 * max(abs(k), 1e-3):
            if _close(k, 1 - momentum, 1e-6):
                return (f"{text}: {step.b} keeps {k:.6g} of the old value where {step.a} keeps {momentum:g}, its "
                        f"momentum read the other way (torch's momentum {1 - momentum:g} is the new batch's share; "
                        f"Keras's, Flax's and Gluon's {momentum:g} is the old value's)")
            if k != momentum and _close(k, float(np.float32(momentum)), 1e-7):
                return (f"{text}: {step.b} keeps {k:.9g} of the old value where {step.a} keeps {momentum:g}: the "
                        f"momentum held in float32 ({momentum:g} rounded to 32 bits)")
            return f"{text}: {step.b} keeps {k:.9g} of the old value where {step.a} keeps {momentum:g} (the momentum)"
    if name == "running_var":
        outputs = list(step.stages["forward"].values())
        fed = np.shape(outputs[int(index) - 1][0]) if int(index) > 0 else (step.rows,)
        rows = step.rows * int(np.prod(fed[2:]))  # the values each channel's statistic is taken over
        theirs = (b - momentum * start) / (1 - momentum)
        ratio = constant_factor({"v": batch}, {"v": theirs}, step.dtype)
        if ratio is not None and rows > 1 and _close(ratio, rows / (rows - 1), 1e-6):
            return (f"{text}: {step.b} keeps the unbiased batch variance (× n/(n−1) = {ratio:.6g}) where {step.a} "
                    "keeps the biased one (torch's running_var against Keras's, Flax's and Gluon's)")
        if ratio is not None and rows > 1 and _close(ratio, (rows - 1) / rows, 1e-6):
            return (f"{text}: {step.b} keeps the biased batch variance where {step.a} keeps the unbiased one "
                    f"(× n/(n−1) = {1 / ratio:.6g}: torch's running_var against Keras's, Flax's and Gluon's)")
    return f"{text}: how that layer updates its running statistics"


def _summed(factor: float, rows: int) -> str | None:
    if rows > 1 and _close(factor, rows, 1e-6):
        return f"a factor {rows}, the batch size: b sums over the batch where a averages"
    if rows > 1 and _close(factor, 1 / rows, 1e-6):
        return f"a factor 1/{rows}, one over the batch size: a sums over the batch where b averages"
    return None


def loss_cause(step: Step) -> str:
    a, b = step.sides("loss")
    factor = constant_factor(a, b, step.dtype)  # one number: always "a factor"; the gradients say if it is one
    grads_a, grads_b = step.sides("gradient")
    if factor is None:
        return "the forward outputs agree, the loss on them does not: the loss functions differ"
    on_gradients = constant_factor(grads_a, grads_b, step.dtype)
    if step.differing("gradient") and (on_gradients is None or not _close(on_gradients, factor, 1e-6)):
        return "the forward outputs agree, the loss on them and its gradients do not: the loss functions differ"
    if not step.differing("gradient"):
        return (f"the loss differs by a factor {factor:.6g} while every gradient agrees: the loss is reported "
                "scaled, the one trained on is not")
    if _close(factor, 0.5, 1e-6):
        return "a constant factor ½ on the loss and every gradient (b is half of a): half-MSE against MSE"
    if _close(factor, 2.0, 1e-6):
        return "a constant factor 2 on the loss and every gradient (b is twice a): MSE against half-MSE"
    summed = _summed(factor, step.rows)
    return (f"a constant factor {factor:.6g} on the loss and every gradient (b = {factor:.6g}·a)"
            + (f": {summed}" if summed else ": the loss is scaled"))


def gradient_cause(step: Step) -> str:
    a, b = step.sides("gradient")
    differing = step.differing("gradient")
    factor = constant_factor(a, b, step.dtype)
    if factor is not None and len(differing) > 1:
        summed = _summed(factor, step.rows)
        return (f"every gradient differs by a constant factor {factor:.6g} while the loss agrees"
                + (f": {summed}" if summed else ": the backward is scaled (the loss's gradient, not the loss)"))
    if len(differing) == 1:
        key = differing[0]
        one = constant_factor({key: a[key]}, {key: b[key]}, step.dtype)
        if one is not None:
            return (f"only the gradient of {key} differs, by a constant factor {one:.6g}: that parameter's backward "
                    "is scaled")
        return f"only the gradient of {key} differs: that parameter's backward"
    layers = sorted({int(key.split(".")[0]) for key in a})
    agreeing = [index for index in layers if not any(key.startswith(f"{index}.") for key in differing)]
    first_bad = max((int(key.split(".")[0]) for key in differing), default=None)
    if agreeing and first_bad is not None and min(agreeing) > first_bad:
        between = [index for index in range(first_bad + 1, min(agreeing)) if isinstance(step.spec[index], Activation)]
        if between:
            name = step.spec[between[-1]].label
            return (f"gradients agree from layer {min(agreeing)} on and differ before it: the backward of "
                    f"layer {between[-1]} ({name}), the activation's derivative")
    return f"the gradients of {', '.join(differing)} differ while the loss agrees: the backward pass"


def _moments(step: Step, kind: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    pairs = {key.split("/", 1)[1]: pair for key, pair in step.stages["state"].items() if key.startswith(f"{kind}/")}
    return ({key: np.asarray(x, np.float64) for key, (x, _) in pairs.items()},
            {key: np.asarray(z, np.float64) for key, (_, z) in pairs.items()})


def update_cause(step: Step) -> str:
    for reader in (_zero_update, _beta2_in_float32, _factor_on_updates, _decay_term, _epsilon_placement,
                   epsilon_in_root):
        found = reader(step)
        if found:
            return found
    return ("gradients agree, the updates differ, and no mechanism fits the numbers (not one factor, not zero, "
            "not a term proportional to the weights, not Adam's ε): the optimiser's update rule")


def _beta_fit(step: Step, kind: str) -> float | None:
    """δ with the moment after the step differing by δ·(moment before − g) (m), δ·(v before − g²) (v) or
    δ·(buffer before) (momentum): one side's β (or μ) is the other's + δ. g includes the weight decay."""
    a, b = _moments(step, kind)
    if not a:
        return None
    grads, decay = step.sides("gradient")[0], float(step.options.get("weight_decay", 0.0))
    before = {key: np.asarray(step.state.get(kind, {}).get(key, np.zeros_like(a[key])), np.float64) for key in a}
    g = {key: grads[key] + decay * np.asarray(step.params[key], np.float64) for key in a}
    basis = {key: before[key] - (g[key] ** 2 if kind == "v" else g[key] if kind == "m" else 0.0) for key in a}
    # 1 %: the 1/batch-size scale held in float32 as well moves g² by ~3e-8, 0.2 % of β₂'s float32 effect
    return _proportional(flat(b) - flat(a), flat(basis), step.dtype, rel=1e-2)


BETA_NAMES = {"m": ("first moment", "β₁", ADAM_BETAS[0]), "v": ("second moment", "β₂", ADAM_BETAS[1]),
              "velocity": ("momentum buffer", "μ", None)}


def _beta_cause(step: Step, kind: str) -> str:
    delta = _beta_fit(step, kind)
    if delta is None:
        return ""
    name, symbol, value = BETA_NAMES[kind]
    if value is None:
        value = float(step.options.get("momentum") or 0.0)
    held = float(np.float32(value)) - value
    basis = {"v": "v before − g²", "m": "m before − g", "velocity": "buffer before"}[kind]
    text = f"the {name} after the step differs by {delta:.3g}·({basis})"
    for shift, who in ((held, step.b), (-held, step.a)):
        if held and abs(delta - shift) <= 1e-2 * abs(held):
            return (f"{text}, δ = float32({symbol}) − {symbol}, so (1 − {symbol}) differs by a factor "
                    f"{near_one((1 - value - shift) / (1 - value))} = (1 − float32({symbol})) / (1 − {symbol}): "
                    f"{symbol} = {value:g} is held in float32 by {who}")
    return f"{text}: {symbol} is {value:g} in {step.a} and {value + delta:.9g} in {step.b}"


def _beta2_in_float32(step: Step) -> str:
    if step.options.get("optimizer") not in ("adam", "adamw"):
        return ""
    found = _beta_cause(step, "v") or _beta_cause(step, "m")
    return f"gradients agree; {found}" if found else ""


def _zero_update(step: Step) -> str:
    a, b = step.sides("update")
    for still, moving in ((step.b, a), (step.a, b)):
        other = b if moving is a else a
        frozen = [key for key in moving if np.any(moving[key]) and not np.any(other[key])]
        if not frozen:
            continue
        if len(frozen) < len(moving):
            return (f"{still} leaves {', '.join(frozen)} unchanged while the gradients agree: those parameters "
                    "are not updated (frozen, or not given to the optimiser)")
        index = 0 if still == step.a else 1
        kept = {key: pair[index] for key, pair in step.stages["state"].items() if key != "step"}
        if not kept:
            return (f"{still} makes no update while the gradients agree: the step is skipped (or taken with a "
                    "learning rate of 0)")
        unmoved = all(np.array_equal(value, step.state[key.split("/")[0]][key.split("/", 1)[1]])
                      for key, value in kept.items())
        if unmoved:
            return (f"{still} skips the step: no parameter moves and its optimiser state stays as it was while the "
                    "gradients agree")
        return (f"{still}'s update is zero for every parameter though its optimiser state moves and the gradients "
                "agree: the step's result is not written back")
    return ""


def _hyper_parameters(step: Step) -> dict[str, float]:
    lr, rows = rate(step), step.rows
    f32 = float(np.float32(lr))
    return {f"float32({lr:g}) / {lr:g}: the learning rate is held in float32": f32 / lr,
            f"float32({lr:g})·float32(1/{rows}) / ({lr:g}/{rows}): the learning rate and the 1/batch-size "
            "gradient scale are held in float32": f32 * float(np.float32(1 / rows)) * rows / lr}


def _factor_on_updates(step: Step) -> str:
    factor = constant_factor(*step.sides("update"), step.dtype)
    if factor is None:
        return ""
    for why, held in _hyper_parameters(step).items():  # a factor near 1: hyper-parameters rounded to 32 bits
        for value, who in ((held, step.b), (1 / held, step.a)):
            if held != 1 and abs(factor - value) <= 1e-3 * abs(held - 1):
                return f"every update differs by a constant factor {near_one(factor)}, which is {why} by {who}"
    lr = rate(step)
    summed = _summed(factor, step.rows)
    return (f"gradients agree, every update differs by a constant factor {factor:.9g} (b = {factor:.6g}·a): "
            + (summed if summed else f"the step size (b moves as if lr were {factor * lr:.6g}) or a scale on it"))


def _decay_term(step: Step) -> str:
    """Weight decay applied by one and not the other, or coupled by one (λ·w added to the gradient its moments
    keep, L2) and decoupled by the other (−lr·λ·w on the weights, AdamW): the update differing by k·w, the
    moments by (1 − β₁)·λ·w (Adam) or λ·w (momentum)."""
    a, b = step.sides("update")
    weights = flat({key: step.params[key] for key in a})
    k = _proportional(flat(b) - flat(a), weights, step.dtype)
    lr, decay = rate(step), float(step.options.get("weight_decay", 0.0))
    kind, scale = ("m", 1 - ADAM_BETAS[0]) if step.options.get("optimizer") == "adam" else ("velocity", 1.0)
    moments_a, moments_b = _moments(step, kind)
    held = _proportional(flat(moments_b) - flat(moments_a), weights, step.dtype) if moments_a else None
    coupled = None if held is None or not decay or not _close(abs(held), scale * decay, 1e-3) else \
        (step.b, step.a) if held > 0 else (step.a, step.b)  # (who keeps λ·w in its moments, who does not)
    if k is None and coupled is None:
        return ""
    text = "gradients agree, the updates differ"
    if coupled is not None:
        moment = "first moment" if kind == "m" else "momentum buffer"
        keeps, lacks = coupled
        if k is not None and _close(abs(k), lr * decay, 1e-3) and (k < 0) == (lacks == step.b):
            return (f"{text} by a term proportional to the weights ({k:.6g}·w), k = −lr·λ, and {keeps}'s {moment} "
                    f"holds λ·w where {lacks}'s does not: weight decay λ = {decay:g} coupled by {keeps} (added to "
                    f"the gradient, L2) and decoupled by {lacks} (−lr·λ·w on the weights, AdamW-style)")
        return (f"{text}; {keeps}'s {moment} holds {scale:g}·λ·w more than {lacks}'s and {lacks}'s update takes no "
                f"−lr·λ·w: weight decay λ = {decay:g} coupled by {keeps} (added to the gradient, L2) and not applied "
                f"by {lacks}")
    assert k is not None
    more, less = (step.b, step.a) if k < 0 else (step.a, step.b)
    text = f"{text} by a term proportional to the weights ({k:.6g}·w)"
    if decay and _close(abs(k), lr * decay, 1e-3):
        return (f"{text}, k = {'−' if k < 0 else ''}lr·λ: {less} applies no weight decay (λ = {decay:g} asked for), "
                f"{more} does")
    return f"{text}: {more} decays the weights by {abs(k) / lr:.6g} more than {less} (as lr·λ)"


def _effective_epsilon(update: np.ndarray, m: np.ndarray, v: np.ndarray, lr: float, t: int) -> float | None:
    """The ε that makes update = −lr·m̂ / (√v̂ + ε), read back from a backend's own update and moments."""
    m_hat, root = m / (1 - ADAM_BETAS[0] ** t), np.sqrt(v / (1 - ADAM_BETAS[1] ** t))
    keep = (np.abs(update) > 0) & (root > 0)
    return float(np.median(-lr * m_hat[keep] / update[keep] - root[keep])) if keep.any() else None


def _epsilon_placement(step: Step) -> str:
    if step.options.get("optimizer") != "adam" or step.differing("state"):
        return ""
    a, b = step.sides("update")
    m, v = (flat(side) for side in (_moments(step, "m")[0], _moments(step, "v")[0]))
    t, lr = int(step.stages["state"]["step"][0]), rate(step)
    if t < 1:  # no step counted (a state without one): no bias correction to read ε back through, 1 − β₂⁰ = 0
        return ""
    found = {side: _effective_epsilon(flat(values), m, v, lr, t) for side, values in ((step.a, a), (step.b, b))}
    if None in found.values():
        return ""
    outside = ADAM_EPS / math.sqrt(1 - ADAM_BETAS[1] ** t)
    for raw, hat in ((step.b, step.a), (step.a, step.b)):
        if _close(found[raw] or 0.0, outside, 1e-2) and _close(found[hat] or 0.0, ADAM_EPS, 1e-2):
            return (f"gradients and Adam's moments agree; read back from the updates, ε acts on √v̂ as "
                    f"{found[hat]:.3g} in {hat} and {found[raw]:.3g} = ε/√(1 − β₂ᵗ) at t = {t} in {raw}: ε "
                    f"outside the bias correction in {raw} (added to √v instead of √v̂)")
    if not _close(found[step.a] or 0.0, found[step.b] or 0.0, 1e-2):
        return (f"gradients and Adam's moments agree; read back from the updates, ε acts on √v̂ as "
                f"{found[step.a]:.3g} in {step.a} and {found[step.b]:.3g} in {step.b}: Adam's ε differs")
    return ""


def state_cause(step: Step) -> str:
    counts = step.stages["state"]["step"]
    if worst({"step": counts}, step.dtype) is not None:
        return (f"gradients and updates agree; the step count after the step is {float(counts[0]):g} in {step.a} "
                f"and {float(counts[1]):g} in {step.b}: the step is counted differently (Adam's bias correction "
                "will use another t)")
    decay = float(step.options.get("weight_decay", 0.0))
    for kind, name, scale in (("m", "first moment", 1 - ADAM_BETAS[0]), ("velocity", "momentum buffer", 1.0),
                              ("v", "second moment", 0.0)):
        moments_a, moments_b = _moments(step, kind)
        if not moments_a or not any(key.startswith(f"{kind}/") for key in step.differing("state")):
            continue
        weights = flat({key: step.params[key] for key in moments_a})
        k = _proportional(flat(moments_b) - flat(moments_a), weights, step.dtype) if scale else None
        if k is not None:
            holder = step.a if k < 0 else step.b
            matches = decay and _close(abs(k), scale * decay, 1e-3)
            coupled = f" = {scale:g}·λ: weight decay λ = {decay:g} is" if matches else ": a decay term is"
            return (f"gradients and updates agree; the {name} differs by a term proportional to the weights "
                    f"({k:.6g}·w){coupled} added to the gradient the optimiser keeps by {holder} alone (coupled, "
                    "L2, against decoupled or none)")
        found = _beta_cause(step, kind)
        if found:
            return f"gradients and updates agree; {found}"
        return f"gradients and updates agree; the {name} after the step does not: how it is accumulated"
    return "gradients and updates agree, the optimiser state after the step does not: its moments or step count"
