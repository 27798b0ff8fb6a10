"""Keras 3's own optimisers and schedules, and TensorFlow's clipping, built to follow a Training (the canonical
constants given explicitly, as float64 where Keras would round a Python float through float32), and where Keras
keeps each canonical state kind."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import training as canonical
from .training import Training

# Canonical kind → (the optimiser's list of variables, the factor from Keras's value to the canonical one, "lr" for
# the learning rate's reciprocal with a minus: Keras's SGD keeps m = μ·m − lr·g, torch's buffer is −m / lr).
_BUFFER: dict[str, tuple[str, float | str]] = {"velocity": ("momentums", "lr")}
SLOTS: dict[str, dict[str, tuple[str, float | str]]] = {
         "sgd": _BUFFER, "momentum": _BUFFER, "nesterov": _BUFFER,
         "adam": {"m": ("_momentums", 1.0), "v": ("_velocities", 1.0)},
         "adamw": {"m": ("_momentums", 1.0), "v": ("_velocities", 1.0)},
         "rmsprop": {"square_avg": ("_velocities", 1.0)}, "adagrad": {"sum": ("_accumulators", 1.0)},
         "adadelta": {"square_avg": ("_accumulated_grads", 1.0), "acc_delta": ("_accumulated_delta_vars", 1.0)}}


def _schedule(training: Training) -> Any:
    """The learning rate as Keras takes it. Its schedules compute in the dtype of their initial rate: given as
    np.float64, float64 (a Python float would be converted to floatx, float32)."""
    found, lr = training.schedule, np.float64(training.lr)
    if found.name == "constant":
        return training.lr  # the optimiser's learning-rate variable, of floatx: built under the model's dtype
    schedules = keras.optimizers.schedules
    if found.name in ("step", "exp"):
        every = int(found["every"]) if found.name == "step" else 1
        return schedules.ExponentialDecay(lr, decay_steps=every, decay_rate=np.float64(found["gamma"]),
                                          staircase=found.name == "step")
    steps, warmup = int(found["steps"]), int(found["warmup"])
    if not warmup:
        return schedules.CosineDecay(lr, decay_steps=steps, alpha=np.float64(found["min"]))
    # Keras's decay_steps leave the warm-up out (optax's and MXNet's count it in)
    return schedules.CosineDecay(np.float64(found["start"]) * lr, decay_steps=steps - warmup,
                                 alpha=np.float64(found["min"]), warmup_target=lr, warmup_steps=warmup)


def _optimizer(training: Training, epsilon: Any) -> keras.optimizers.Optimizer:
    name, lr, optimizers = training.optimizer, _schedule(training), keras.optimizers
    if name in ("adam", "adamw"):
        beta_1, beta_2 = (np.float64(beta) for beta in canonical.ADAM_BETAS)
        made = (optimizers.AdamW(lr, weight_decay=np.float64(training.weight_decay), beta_1=beta_1,
                                 beta_2=np.float64(canonical.ADAM_BETAS[1])) if name == "adamw" else
                optimizers.Adam(lr, beta_1=beta_1, beta_2=beta_2))
        made.epsilon = epsilon  # read at each step: ε·√(1−β₂ᵗ), set before it
        return made
    if name == "rmsprop":  # ε inside the root (rmsprop.py, update_step: sqrt(velocity + ε)): ε² is nearest torch's
        return optimizers.RMSprop(lr, rho=np.float64(canonical.RMSPROP_ALPHA), momentum=0.0,
                                  epsilon=canonical.RMSPROP_EPS**2)
    if name == "adagrad":
        return optimizers.Adagrad(lr, initial_accumulator_value=np.float64(canonical.ADAGRAD_INITIAL),
                                  epsilon=canonical.ADAGRAD_EPS)
    if name == "adadelta":
        # ρ as a Python float: Keras multiplies it into the variables (rho * accumulated_grad), exact in their dtype;
        # an np.float64 there would take the variable for an array
        return optimizers.Adadelta(lr, rho=canonical.ADADELTA_RHO, epsilon=canonical.ADADELTA_EPS)
    return optimizers.SGD(lr, momentum=np.float64(training.momentum), nesterov=name == "nesterov")


class KerasOptimizer:
    """One model's Keras optimiser; `apply` inside the traced step: clip, L2, then Keras's update."""

    def __init__(self, training: Training, dtype: str, variables: list[Any], scaled: bool = False) -> None:
        self.training, self.dtype = training, dtype
        self.epsilon = tf.Variable(canonical.ADAM_EPS, dtype=dtype, trainable=False)
        self.optimizer = _optimizer(training, self.epsilon)
        self.optimizer.build(variables)
        # float16: Keras's dynamic loss scaling, torch's constants given (its own start at 2**15)
        self.scaler = keras.optimizers.LossScaleOptimizer(
            self.optimizer, initial_scale=canonical.LOSS_SCALE["initial"],
            dynamic_growth_steps=int(canonical.LOSS_SCALE["interval"])) if scaled else None
        if self.scaler is not None:
            self.scaler.build(variables)

    def scale_loss(self, loss: Any) -> Any:
        return loss if self.scaler is None else self.scaler.scale_loss(loss)

    def loss_scale(self) -> float | None:
        """The scale the next step's loss is multiplied by; None without loss scaling."""
        return None if self.scaler is None else float(self.scaler.dynamic_scale.numpy())

    def apply(self, grads: list[Any], variables: list[Any]) -> None:
        clip, training = self.training.clip, self.training
        if self.scaler is not None:  # unscaled (× a power of 2, exact) for the clip and the L2 term, as torch's amp
            grads = [grad / self.scaler.dynamic_scale for grad in grads]
        if clip is not None:  # TensorFlow's, which Keras's clipnorm and clipvalue call, before the L2 term as torch
            if clip.kind == "global-norm":
                grads = tf.clip_by_global_norm(grads, clip.limit)[0]
            elif clip.kind == "norm":
                grads = [tf.clip_by_norm(grad, clip.limit) for grad in grads]
            else:
                grads = [tf.clip_by_value(grad, -clip.limit, clip.limit) for grad in grads]
        if training.coupled_decay:  # Keras's weight_decay is decoupled (AdamW's); torch's is this L2 term
            grads = [grad + training.coupled_decay * variable for grad, variable in zip(grads, variables, strict=True)]
        if training.optimizer in ("adam", "adamw"):
            # Keras's Adam adds ε to √v, torch and the paper to √v̂ = √v / √(1−β₂ᵗ): ε·√(1−β₂ᵗ) makes Keras's
            # update the paper's, exactly (the MXNet backend does the same).
            step = tf.cast(self.optimizer.iterations + 1, self.dtype)
            beta_2 = tf.constant(canonical.ADAM_BETAS[1], self.dtype)
            self.epsilon.assign(canonical.ADAM_EPS * tf.sqrt(1 - beta_2**step))
        if self.scaler is None:
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        else:  # scaled again for the LossScaleOptimizer, which skips a step whose gradient is not finite
            self.scaler.apply([grad * self.scaler.dynamic_scale for grad in grads], variables)

    def slots(self, variable: Any) -> dict[str, tuple[Any, float]]:
        """The optimiser's variables for one model variable, by canonical kind, with the factor to canonical."""
        index = self.optimizer._get_variable_index(variable)
        found = {}
        for kind, (attribute, factor) in SLOTS.get(self.training.optimizer, {}).items():
            if kind in self.training.state_kinds():
                scale = -1 / float(self.optimizer.learning_rate.numpy()) if factor == "lr" else float(factor)
                found[kind] = (getattr(self.optimizer, attribute)[index], scale)
        return found
