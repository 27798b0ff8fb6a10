"""What each framework's own optimisers, schedules and clips cannot follow of a Training, and why (a finding, with
its source): read without importing any framework, so a run refuses a backend before starting it."""

from __future__ import annotations

from .training import Training


def mxnet_refuses(training: Training, dtype: str) -> str | None:
    """Why MXNet 1.9.1's optimisers cannot follow this training (a finding, with its source), or None."""
    name, schedule = training.optimizer, training.schedule
    if name == "adamw":
        return ("MXNet 1.9.1 has no AdamW optimiser: mx.optimizer.Adam's wd is an L2 term, and "
                "nd.contrib.adamw_update has no bias correction (mxnet/ndarray/gen__internal.py, _adamw_update)")
    if name == "adadelta" and (training.lr != 1.0 or schedule.name != "constant"):
        return ("MXNet's AdaDelta has no learning rate (mxnet/optimizer/optimizer.py:1801-1823, AdaDelta.update: "
                f"w −= Δ + wd·w): it runs torch's lr=1 only, at a constant rate; received lr={training.lr:g}"
                + (f", schedule {schedule.name}" if schedule.name != "constant" else ""))
    if schedule.name in ("step", "exp") and schedule["gamma"] > 1:
        return (f"MXNet's FactorScheduler takes factors up to 1 (mxnet/lr_scheduler.py, FactorScheduler: 'Factor must "
                f"be no more than 1'); received gamma={schedule['gamma']:g}")
    if schedule.name == "onecycle":
        return "MXNet 1.9.1 has no one-cycle schedule (mxnet/lr_scheduler.py: Factor, MultiFactor, Poly, Cosine)"
    if schedule.name != "constant" and training.momentum:
        return ("MXNet's SGD and NAG keep the rate inside their momentum (state = momentum·state + lr·g, "
                "mxnet/optimizer/optimizer.py:553-555): under a schedule their steps part from torch's buffer, which "
                "the rate multiplies after")
    if training.clip is not None and training.clip.kind != "value" and dtype == "float64":
        return ("gluon.utils.clip_global_norm fails on float64 gradients: it concatenates their scale with a float32 "
                "nd.ones(1) (mxnet/gluon/utils.py, clip_global_norm: 'Non-uniform data type in Concat')")
    if training.clip is not None and training.clip.kind == "value" and training.coupled_decay and \
            name not in ("sgd", "momentum"):
        return (f"MXNet's {name} clips the gradient with wd·w already added (adam_update: "
                "clip(rescale·g + wd·w)), where torch clips the loss's gradient alone")
    return None


def whole(number: float) -> bool:
    """Whether a product such as pct × steps is a whole number, its float rounding aside (0.28 × 25)."""
    return abs(number - round(number)) <= 1e-9 * max(1.0, abs(number))


def jax_refuses(training: Training, dtype: str) -> str | None:
    """Why optax cannot follow this training, or None."""
    found = training.schedule
    if found.name == "onecycle" and found.steps is not None and not whole(found["pct"] * found.steps):
        return (f"optax's cosine_onecycle_schedule peaks at a whole update, torch's OneCycleLR at pct × steps − 1 = "
                f"{found['pct'] * found.steps - 1:g}: give pct and steps whose product is whole")
    return None


def tensorflow_refuses(training: Training, dtype: str) -> str | None:
    """Why Keras 3's optimisers cannot follow this training, or None."""
    if training.schedule.name == "onecycle":
        return "Keras 3.15.1 has no one-cycle schedule (keras/src/optimizers/schedules/learning_rate_schedule.py)"
    if training.schedule.name != "constant" and training.momentum:
        return ("Keras's SGD keeps the rate inside its momentum (m = μ·m − lr·g, keras/src/optimizers/sgd.py:104-111): "
                "under a schedule its steps part from torch's buffer, which the rate multiplies after")
    return None


REFUSALS = {"mxnet": mxnet_refuses, "jax": jax_refuses, "tensorflow": tensorflow_refuses}


def refuses(framework: str, training: Training, dtype: str) -> str | None:
    """Why `framework`'s own machinery cannot run `training` in `dtype`, or None (torch's is the canonical one)."""
    found = REFUSALS.get(framework)
    return found(training, dtype) if found is not None else None


# Each framework's own defaults for each optimiser (the suite gives every one torch's constants explicitly): what
# `--init native` reports beside the initialisers, from the sources cited in the README's optimiser table.
DEFAULTS = {
    "torch": {"sgd": "lr 1e-3", "momentum": "momentum 0, dampening 0", "nesterov": "momentum 0 (required > 0)",
              "adam": "lr 1e-3, betas (0.9, 0.999), eps 1e-8 on √v̂", "adamw": "lr 1e-3, weight_decay 0.01",
              "rmsprop": "lr 1e-2, alpha 0.99, eps 1e-8 outside the root",
              "adagrad": "lr 1e-2, initial_accumulator_value 0, eps 1e-10 outside the root",
              "adadelta": "lr 1.0, rho 0.9, eps 1e-6"},
    "mxnet": {"sgd": "learning_rate 0.01", "momentum": "momentum 0, the rate inside the buffer",
              "nesterov": "nag, momentum 0", "adam": "learning_rate 1e-3, epsilon 1e-8 on √v",
              "adamw": "none (Adam's wd is L2)",
              "rmsprop": "learning_rate 1e-3, gamma1 0.9, epsilon 1e-8 inside the root",
              "adagrad": "learning_rate 0.01, eps 1e-7 inside the root", "adadelta": "no rate, rho 0.9, epsilon 1e-5"},
    "jax": {"sgd": "learning_rate required", "momentum": "momentum None", "nesterov": "nesterov False",
            "adam": "eps 1e-8 on √v̂", "adamw": "weight_decay 1e-4",
            "rmsprop": "decay 0.9, eps 1e-8 inside the root (eps_in_sqrt=True)",
            "adagrad": "initial_accumulator_value 0.1, eps 1e-7 inside the root",
            "adadelta": "learning_rate None (no sign flip: it ascends), rho 0.9, eps 1e-6"},
    "tensorflow": {"sgd": "learning_rate 0.01", "momentum": "momentum 0, the rate inside the buffer",
                   "nesterov": "nesterov False", "adam": "learning_rate 1e-3, epsilon 1e-7 on √v",
                   "adamw": "weight_decay 0.004 (decoupled, on any optimiser)",
                   "rmsprop": "learning_rate 1e-3, rho 0.9, epsilon 1e-7 inside the root",
                   "adagrad": "learning_rate 1e-3, initial_accumulator_value 0.1, epsilon 1e-7 inside the root",
                   "adadelta": "learning_rate 1e-3, rho 0.95, epsilon 1e-7"},
}


def native_defaults(framework: str, optimizer: str) -> str:
    """The framework's own defaults for `optimizer`, as reports say them; "" where there are none to say."""
    found = DEFAULTS.get(framework, {}).get(optimizer)
    return f"its {optimizer} defaults, not used here: {found}" if found else ""
