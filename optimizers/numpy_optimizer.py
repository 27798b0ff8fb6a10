"""The canonical update of every optimiser, written out by hand in NumPy (torch.optim's formulas): the NumPy
backend's optimiser, and the reference each framework's own is checked against."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import training as canonical
from .training import Training


class NumpyOptimizer:
    """The optimiser state of every parameter (canonical kinds, by name) and the update of one step."""

    def __init__(self, training: Training, params: Mapping[str, np.ndarray]) -> None:
        self.training = training
        self.params = params  # updated in place
        start = canonical.ADAGRAD_INITIAL if training.optimizer == "adagrad" else 0.0
        self.state = {kind: {name: np.full_like(p, start) for name, p in params.items()}
                      for kind in training.state_kinds()}
        self.steps_taken = 0

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update from the loss's gradients (the batch mean): clip, decay, then the optimiser's rule."""
        training = self.training
        lr = training.lr_at(self.steps_taken)
        self.steps_taken += 1
        t = self.steps_taken
        if training.clip is not None:
            grads = training.clip.apply(grads)
        wd = training.coupled_decay
        for name, param in self.params.items():
            g = grads[name] + wd * param if wd else np.array(grads[name])  # a fresh array, changed in place below
            if training.decoupled and training.weight_decay:
                param *= 1.0 - lr * training.weight_decay  # AdamW: before the update, from the weights as they are
            param -= self._change(name, g, lr, t)

    def _change(self, name: str, g: np.ndarray, lr: float, t: int) -> np.ndarray:
        """What the update subtracts from the parameter `name`, whose (decayed) gradient is g."""
        optimizer, state = self.training.optimizer, self.state
        if optimizer in ("adam", "adamw"):
            beta1, beta2 = canonical.ADAM_BETAS
            m, v = state["m"][name], state["v"][name]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            return lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + canonical.ADAM_EPS)
        if optimizer == "rmsprop":
            v = state["square_avg"][name]
            v *= canonical.RMSPROP_ALPHA
            v += (1 - canonical.RMSPROP_ALPHA) * g * g
            return lr * g / (np.sqrt(v) + canonical.RMSPROP_EPS)
        if optimizer == "adagrad":
            total = state["sum"][name]
            total += g * g
            return lr * g / (np.sqrt(total) + canonical.ADAGRAD_EPS)
        if optimizer == "adadelta":
            v, accumulated = state["square_avg"][name], state["acc_delta"][name]
            v *= canonical.ADADELTA_RHO
            v += (1 - canonical.ADADELTA_RHO) * g * g
            delta = np.sqrt(accumulated + canonical.ADADELTA_EPS) / np.sqrt(v + canonical.ADADELTA_EPS) * g
            accumulated *= canonical.ADADELTA_RHO
            accumulated += (1 - canonical.ADADELTA_RHO) * delta * delta
            return lr * delta
        if "velocity" in state:  # momentum, nesterov: torch's buffer, buf = μ·buf + g
            velocity, mu = state["velocity"][name], self.training.momentum
            velocity *= mu
            velocity += g
            return lr * (g + mu * velocity) if optimizer == "nesterov" else lr * velocity
        g *= lr
        return g
