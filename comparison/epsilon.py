"""Where RMSprop's ε sits, read back from two backends' updates (compare.py explain): torch adds it to the root,
√v + ε (torch/optim/rmsprop.py, _single_tensor_rmsprop: avg = square_avg.sqrt().add_(eps)); Keras and MXNet inside
it, √(v + ε) (keras/src/optimizers/rmsprop.py, update_step; mxnet's rmsprop_update)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from ..optimizers import make_schedule


class Step(Protocol):
    """What explain's reader is given of one replayed step (mechanisms.Step)."""

    a: str
    b: str
    stages: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    params: Mapping[str, np.ndarray]
    options: Mapping[str, Any]

    def sides(self, stage: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]: ...

    def differing(self, stage: str) -> list[str]: ...


def rate(step: Step) -> float:
    """The learning rate of the replayed update: the run's, as its schedule sets it at that update (the state's step
    count after it is t; the update's index, t − 1)."""
    t = int(step.stages["state"]["step"][0])
    return float(step.options.get("lr", 0.0)) * make_schedule(step.options.get("schedule")).factor(max(t - 1, 0))


FIT = 1e-7  # an update predicted this close (relative) on every element fits the form


def _form(update: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float) -> tuple[str, float] | None:
    """The form whose one ε (read back as the median over the elements) predicts every element of `update` best,
    within FIT: "outside", −lr·g/(√v + ε), or "inside", −lr·g/√(v + ε); None when neither does."""
    denominator = -lr * g / update
    best: tuple[float, str, float] | None = None
    for form, epsilon in (("outside", float(np.median(denominator - np.sqrt(v)))),
                          ("inside", float(np.median(denominator**2 - v)))):
        if epsilon <= 0:
            continue
        predicted = -lr * g / (np.sqrt(v) + epsilon if form == "outside" else np.sqrt(v + epsilon))
        residual = float(np.max(np.abs(predicted - update) / np.abs(update)))
        if residual <= FIT and (best is None or residual < best[0]):
            best = (residual, form, epsilon)
    return None if best is None else (best[1], best[2])


def epsilon_in_root(step: Step) -> str:
    """For rmsprop with agreeing gradients and square averages: the ε each side's update implies, outside the root
    or inside it, where one side fits only the one form and the other only the other."""
    if step.options.get("optimizer") != "rmsprop" or step.differing("state") or step.differing("gradient"):
        return ""
    lr = rate(step)
    decay = float(step.options.get("weight_decay", 0.0))
    grads = step.sides("gradient")[0]
    g = np.concatenate([np.ravel(grads[key] + decay * np.asarray(step.params[key], np.float64)) for key in grads])
    v = np.concatenate([np.ravel(np.asarray(step.stages["state"][f"square_avg/{key}"][0], np.float64))
                        for key in grads])
    forms = {}
    for side, update in zip((step.a, step.b), step.sides("update"), strict=True):
        u = np.concatenate([np.ravel(update[key]) for key in grads])
        keep = (np.abs(u) > 0) & (v > 0) & (np.abs(g) > 0)
        if keep.sum() < 2:
            return ""
        found = _form(u[keep], g[keep], v[keep], lr)
        if found is None:
            return ""
        forms[side] = found
    for outside_side, inside_side in ((step.a, step.b), (step.b, step.a)):
        if forms[outside_side][0] == "outside" and forms[inside_side][0] == "inside":
            return (f"gradients and RMSprop's square averages agree; read back from the updates, ε is added outside "
                    f"the root as {forms[outside_side][1]:.3g} in {outside_side} (√v + ε, torch's) and inside it as "
                    f"{forms[inside_side][1]:.3g} in {inside_side} (√(v + ε), Keras's and MXNet's): where ε sits "
                    "differs, most where √v nears ε")
    return ""
