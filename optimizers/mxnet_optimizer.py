"""gluon.Trainer with MXNet's own optimisers and lr_scheduler, and gluon.utils' clipping, set to follow a Training;
the state in canonical form. Where MXNet 1.9.1 cannot follow, support.py says why (a finding, with its source)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from mxnet import gluon, lr_scheduler, nd

from . import training as canonical
from .training import Training

NAMES = {"sgd": "sgd", "momentum": "sgd", "nesterov": "nag", "adam": "adam", "rmsprop": "rmsprop",
         "adagrad": "adagrad", "adadelta": "adadelta"}
# Their built-in wd is not torch's L2 (mxnet/optimizer/optimizer.py: NAG's kernel reads the weight it has just
# written; AdaGrad's w += (div + wd·w)·(−lr) and AdaDelta's w −= Δ + wd·w keep it out of the history): wd·w goes into
# the gradient by hand instead, with MXNet's ops.
MANUAL_L2 = ("nesterov", "adagrad", "adadelta")
# Created as float32 whatever the weight's dtype (optimizer.py: zeros(weight.shape, weight.context), no dtype):
# a float64 model's first update then fails, so their state is made here, in the weight's dtype.
OWN_STATE = ("rmsprop", "adagrad", "adadelta")
# gluon.utils.clip_global_norm scales by max_norm / (norm + 1e-8) (mxnet/gluon/utils.py, clip_global_norm).
CLIP_NORM_EPS = 1e-8


def _scheduler(training: Training) -> Any:
    """MXNet's own scheduler: it is called with num_update = t + 1 for update t (optimizer.py, _update_count comes
    before _get_lr), which Factor's decay count already allows for and Cosine's is shifted to."""
    schedule, lr = training.schedule, training.lr
    if schedule.name in ("step", "exp"):
        every = int(schedule["every"]) if schedule.name == "step" else 1
        return lr_scheduler.FactorScheduler(step=every, factor=schedule["gamma"], stop_factor_lr=0.0, base_lr=lr)
    if schedule.name == "cosine":
        steps, warmup, start = int(schedule["steps"]), int(schedule["warmup"]), schedule["start"]
        # Its warm-up is begin + (lr − begin)·n / W' at n = t + 1: W' = W + 1 and this begin give S·lr + (1 − S)·lr·t/W
        begin = lr * (1.0 - (1.0 - start) * (warmup + 1) / warmup) if warmup else 0.0
        return lr_scheduler.CosineScheduler(max_update=steps + 1, base_lr=lr, final_lr=schedule["min"] * lr,
                                            warmup_steps=warmup + 1, warmup_begin_lr=begin)
    return None


def _options(training: Training) -> dict[str, Any]:
    name = training.optimizer
    options: dict[str, Any] = {"learning_rate": training.lr,
                               "wd": 0.0 if name in MANUAL_L2 else training.coupled_decay}
    scheduler = _scheduler(training)
    if scheduler is not None:
        options["lr_scheduler"] = scheduler
    if training.clip is not None and training.clip.kind == "value":
        options["clip_gradient"] = training.clip.limit  # applied to the batch mean (after rescale_grad)
    if name in ("sgd", "momentum", "nesterov"):
        options["momentum"] = training.momentum
    elif name == "adam":
        options.update(beta1=canonical.ADAM_BETAS[0], beta2=canonical.ADAM_BETAS[1], epsilon=canonical.ADAM_EPS)
    elif name == "rmsprop":  # ε inside the root (rmsprop_update): ε² there is nearest torch's ε outside
        options.update(gamma1=canonical.RMSPROP_ALPHA, epsilon=canonical.RMSPROP_EPS**2, centered=False)
    elif name == "adagrad":  # eps sits inside the root on every step: from a zero history, the accumulator's start
        options["eps"] = canonical.ADAGRAD_INITIAL
    elif name == "adadelta":
        options.update(rho=canonical.ADADELTA_RHO, epsilon=canonical.ADADELTA_EPS)
    return options


class MxnetOptimizer:
    """One model's gluon.Trainer, and what goes before its step."""

    def __init__(self, training: Training, params: Any, dtype: str) -> None:
        self.training, self.dtype = training, dtype
        self.trainer = gluon.Trainer(params, NAMES[training.optimizer], _options(training),
                                     kvstore=None)  # one CPU: no key-value store to synchronise
        self.params = list(self.trainer._params)  # by index: the optimiser's state is keyed by it
        self.trained = [param for param in self.params if param.grad_req != "null"]  # not running statistics
        if training.optimizer in OWN_STATE:
            self.set_state(0, {index: self.zero_state(index) for index in range(len(self.params))})

    def step(self, batch_size: int) -> None:
        self._clip(batch_size)
        if self.training.optimizer in MANUAL_L2 and self.training.coupled_decay:
            for param in self.trained:  # Trainer.step divides the summed gradient by the batch size
                param.grad()[:] += (self.training.coupled_decay * batch_size) * param.data()
        if self.training.optimizer == "adam":
            # MXNet's Adam adds ε to √v, torch and the paper to √v̂ = √v/√(1−β₂ᵗ): ε·√(1−β₂ᵗ) makes them one
            step = self.trainer.optimizer.num_update + 1  # the optimizer counts the updates it has made
            self.trainer.optimizer.epsilon = canonical.ADAM_EPS * math.sqrt(1 - canonical.ADAM_BETAS[1] ** step)
        self.trainer.step(batch_size)

    def _clip(self, batch_size: int) -> None:
        clip = self.training.clip
        if clip is None or clip.kind == "value":
            return
        grads = [param.grad() for param in self.trained]
        groups = [grads] if clip.kind == "global-norm" else [[grad] for grad in grads]
        limit = clip.limit * batch_size  # the gradients are the batch's sums until Trainer.step divides them
        for group in groups:
            norm = gluon.utils.clip_global_norm(group, math.inf)  # the norm alone: a factor of 1
            if norm > 0:  # then the limit that makes its factor limit / norm, its 1e-8 undone
                gluon.utils.clip_global_norm(group, limit * (norm + CLIP_NORM_EPS) / norm)

    def penalty(self) -> float:
        # The Parameters whose grad_req is not "null" (not the running statistics) get gradient + wd·weight
        return float(nd.add_n(*(0.5 * self.training.coupled_decay * param.wd_mult * nd.sum(nd.square(param.data()))
                                for param in self.trained)).asscalar())

    # ---- the state, canonical kinds by the parameter's index in the Trainer ----

    def zero_state(self, index: int) -> dict[str, np.ndarray]:
        start = canonical.ADAGRAD_INITIAL if self.training.optimizer == "adagrad" else 0.0
        shape = self.params[index].shape
        return {kind: np.full(shape, start, self.dtype) for kind in self.training.state_kinds()}

    def state(self, index: int) -> dict[str, np.ndarray]:
        held = self.trainer._updaters[0].states.get(index)
        if held is None:
            return self.zero_state(index)
        name = self.training.optimizer
        arrays = [item.asnumpy() for item in (held if isinstance(held, tuple | list) else (held,))]
        if name in ("momentum", "nesterov", "sgd"):  # mom = μ·mom − lr·g (lr as float32): torch's buffer is −mom / lr
            return {"velocity": -arrays[0] / float(np.float32(self.training.lr))}
        if name == "adagrad":  # the history starts at 0, the canonical sum at the accumulator's start
            return {"sum": arrays[0] + canonical.ADAGRAD_INITIAL}
        return dict(zip(self.training.state_kinds(), arrays, strict=True))

    def set_state(self, step: int, states: dict[int, dict[str, np.ndarray]]) -> None:
        updater, optimizer = self.trainer._updaters[0], self.trainer._optimizer
        name = self.training.optimizer
        for index, kinds in states.items():
            if name in ("momentum", "nesterov", "sgd"):
                made: Any = (nd.array(-kinds["velocity"] * float(np.float32(self.training.lr)), dtype=self.dtype)
                             if "velocity" in kinds else optimizer.create_state_multi_precision(
                                 index, self.params[index].data()))
            elif name == "adagrad":
                made = nd.array(kinds["sum"] - canonical.ADAGRAD_INITIAL, dtype=self.dtype)
            elif name == "rmsprop":
                made = (nd.array(kinds["square_avg"], dtype=self.dtype),)
            else:
                made = tuple(nd.array(kinds[kind], dtype=self.dtype) for kind in self.training.state_kinds())
            updater.states[index], updater.states_synced[index] = made, True
            optimizer._index_update_count[index] = step
        optimizer.num_update = step
        if optimizer.lr_scheduler is not None:  # its own count moves only forward: a new one, from the start
            optimizer.lr_scheduler = _scheduler(self.training)
