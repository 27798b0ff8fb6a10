"""optax's own optimisers, schedules and clipping, chained to follow a Training (the canonical constants given
explicitly), and where optax keeps each canonical state kind."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from . import training as canonical
from .training import Training

# The optax state field that holds each canonical kind, per optimiser.
STATE_FIELDS = {
    "momentum": {"trace": "velocity"}, "nesterov": {"trace": "velocity"},
    "adam": {"mu": "m", "nu": "v"}, "adamw": {"mu": "m", "nu": "v"},
    "rmsprop": {"nu": "square_avg"}, "adagrad": {"sum_of_squares": "sum"},
    "adadelta": {"e_g": "square_avg", "e_x": "acc_delta"},
}


def schedule(training: Training) -> Any:
    """The learning rate as optax takes it: a float, or one of optax's schedules of the update count (from 0).
    The count is optax's int32, and int32 / int is float32 in JAX even with x64 on (optax/schedules/_schedule.py,
    exponential_decay: p = decreased_count / transition_steps): the schedule is given it as a float of the rate's
    dtype, so that a float64 run's rates are float64's."""
    found = training.schedule
    if found.name == "constant":
        return training.lr
    built = _optax_schedule(training)
    return lambda count: built(jnp.asarray(count, jnp.result_type(float)))


def _optax_schedule(training: Training) -> Any:
    found, lr = training.schedule, training.lr
    if found.name in ("step", "exp"):
        every = int(found["every"]) if found.name == "step" else 1
        return optax.exponential_decay(lr, transition_steps=every, decay_rate=found["gamma"],
                                       staircase=found.name == "step")
    steps = int(found["steps"])
    if found.name == "onecycle":
        # optax's cosine_onecycle_schedule ends its phases at int(pct·T) and T (optax/schedules/_schedule.py:584-591),
        # torch's OneCycleLR (the canonical) at pct·T − 1 and T − 1: its own piecewise cosine, given torch's ends
        # (pct·T whole: refused otherwise, support.py)
        rise = round(found["pct"] * steps) - 1
        return optax.schedules.piecewise_interpolate_schedule(
            "cosine", lr / found["div"], {rise: found["div"], steps - 1: 1 / (found["div"] * found["final"])})
    warmup = int(found["warmup"])
    if not warmup:
        return optax.cosine_decay_schedule(lr, decay_steps=steps, alpha=found["min"])
    return optax.warmup_cosine_decay_schedule(found["start"] * lr, lr, warmup_steps=warmup, decay_steps=steps,
                                              end_value=found["min"] * lr)


def _rule(training: Training, lr: Any) -> optax.GradientTransformation:
    name = training.optimizer
    if name == "adam":
        return optax.adam(lr, b1=canonical.ADAM_BETAS[0], b2=canonical.ADAM_BETAS[1], eps=canonical.ADAM_EPS)
    if name == "adamw":  # decoupled: −lr·(adam + wd·p), p before the update
        return optax.adamw(lr, b1=canonical.ADAM_BETAS[0], b2=canonical.ADAM_BETAS[1], eps=canonical.ADAM_EPS,
                           weight_decay=training.weight_decay)
    if name == "rmsprop":  # ε outside the root, as torch: optax's default puts it inside (eps_in_sqrt=True)
        return optax.rmsprop(lr, decay=canonical.RMSPROP_ALPHA, eps=canonical.RMSPROP_EPS, initial_scale=0.0,
                             eps_in_sqrt=False)
    if name == "adagrad":
        return optax.adagrad(lr, initial_accumulator_value=canonical.ADAGRAD_INITIAL, eps=canonical.ADAGRAD_EPS)
    if name == "adadelta":
        return optax.adadelta(lr, rho=canonical.ADADELTA_RHO, eps=canonical.ADADELTA_EPS)
    return optax.sgd(lr, momentum=training.momentum or None, nesterov=name == "nesterov")


def _clip(training: Training, params: Any) -> list[optax.GradientTransformation]:
    clip = training.clip
    if clip is None:
        return []
    if clip.kind == "value":
        return [optax.clip(clip.limit)]
    if clip.kind == "global-norm":
        return [optax.clip_by_global_norm(clip.limit)]
    # Each parameter by its own norm: optax has no such clip, but its global-norm clip of one leaf is one
    labels = jax.tree_util.tree_map_with_path(lambda path, _: jax.tree_util.keystr(path), params)
    leaves = jax.tree_util.tree_leaves(labels)
    return [optax.multi_transform({label: optax.clip_by_global_norm(clip.limit) for label in leaves}, labels)]


def transformation(training: Training, params: Any) -> optax.GradientTransformation:
    """clip, then L2 (wd·p added to the gradient, as torch), then the optimiser at its scheduled rate."""
    decay = [optax.add_decayed_weights(training.coupled_decay)] if training.coupled_decay else []
    return optax.chain(*_clip(training, params), *decay, _rule(training, schedule(training)))
