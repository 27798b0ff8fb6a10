"""torch.optim's own optimisers, torch.optim.lr_scheduler's schedules and torch.nn.utils' clipping, built to
follow a Training (the canonical constants given explicitly), with the state in canonical form."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from . import training as canonical
from .training import LOSS_SCALE, Training

# Canonical state kind → the key torch.optim keeps it under in optimizer.state[param].
STATE_KEYS = {"velocity": "momentum_buffer", "m": "exp_avg", "v": "exp_avg_sq", "square_avg": "square_avg",
              "sum": "sum", "acc_delta": "acc_delta"}
# torch.nn.utils.clip_grads_with_norm_ scales by max_norm / (total_norm + 1e-6) (torch/nn/utils/clip_grad.py):
# given the norm less 1e-6, its factor is the canonical max_norm / total_norm.
CLIP_NORM_EPS = 1e-6


def _optimizer(training: Training, params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
    lr, wd, name = training.lr, training.weight_decay, training.optimizer
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=canonical.ADAM_BETAS, eps=canonical.ADAM_EPS, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=canonical.ADAM_BETAS, eps=canonical.ADAM_EPS, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=canonical.RMSPROP_ALPHA, eps=canonical.RMSPROP_EPS,
                                   weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, lr_decay=0.0, weight_decay=wd,
                                   initial_accumulator_value=canonical.ADAGRAD_INITIAL, eps=canonical.ADAGRAD_EPS)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=canonical.ADADELTA_RHO, eps=canonical.ADADELTA_EPS,
                                    weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=training.momentum, weight_decay=wd,
                           nesterov=name == "nesterov")


def _scheduler(training: Training, optimizer: torch.optim.Optimizer) -> Any:
    """The schedule as torch's own scheduler classes, stepped once after every optimizer.step()."""
    schedule, lr = training.schedule, training.lr
    scheduler = torch.optim.lr_scheduler
    if schedule.name == "constant":
        return None
    if schedule.name == "step":
        return scheduler.StepLR(optimizer, step_size=int(schedule["every"]), gamma=schedule["gamma"])
    if schedule.name == "exp":
        return scheduler.ExponentialLR(optimizer, gamma=schedule["gamma"])
    steps = int(schedule["steps"])
    if schedule.name == "onecycle":  # momentum left alone: the canonical one-cycle schedules the rate only
        return scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=schedule["pct"],
                                    anneal_strategy="cos", div_factor=schedule["div"],
                                    final_div_factor=schedule["final"], three_phase=False, cycle_momentum=False)
    warmup = int(schedule["warmup"])
    cosine = scheduler.CosineAnnealingLR(optimizer, T_max=steps - warmup, eta_min=schedule["min"] * lr)
    if not warmup:
        return cosine
    rise = scheduler.LinearLR(optimizer, start_factor=schedule["start"], end_factor=1.0, total_iters=warmup)
    return scheduler.SequentialLR(optimizer, [rise, cosine], milestones=[warmup])


class TorchOptimizer:
    """One model's optimiser, schedule and clip; `step` after backward."""

    def __init__(self, training: Training, params: Sequence[torch.Tensor], scaler: str | None = None) -> None:
        self.training, self.params = training, list(params)
        self.optimizer = _optimizer(training, self.params)
        self.scheduler = _scheduler(training, self.optimizer)
        # float16: torch's dynamic loss scaling on the `scaler` device, its constants given (LOSS_SCALE, GradScaler's)
        self.scaler = torch.amp.GradScaler(scaler, init_scale=LOSS_SCALE["initial"], growth_factor=LOSS_SCALE["growth"],
                                           backoff_factor=LOSS_SCALE["backoff"],
                                           growth_interval=int(LOSS_SCALE["interval"])) if scaler else None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self) -> None:
        if self.scaler is None:
            self._clip()
            self.optimizer.step()
        else:  # unscaled before the clip (torch's amp recipe); skipped where a gradient is not finite
            self.scaler.unscale_(self.optimizer)
            self._clip()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()  # after optimizer.step(): the next update's rate (torch's documented order)

    def loss_scale(self) -> float | None:
        """The scale the next step's loss is multiplied by; None without loss scaling."""
        return None if self.scaler is None else float(self.scaler.get_scale())

    def _clip(self) -> None:
        clip = self.training.clip
        if clip is None:
            return
        grads = [param for param in self.params if param.grad is not None]
        if clip.kind == "value":
            torch.nn.utils.clip_grad_value_(grads, clip.limit)
            return
        groups = [grads] if clip.kind == "global-norm" else [[param] for param in grads]
        for group in groups:
            norm = torch.nn.utils.get_total_norm([param.grad for param in group if param.grad is not None])
            torch.nn.utils.clip_grads_with_norm_(group, clip.limit, norm - CLIP_NORM_EPS)

    def penalty(self) -> float:
        """½·Σ wd·‖p‖²: torch.optim adds group["weight_decay"]·p to the gradient of every parameter (coupled)."""
        with torch.no_grad():
            return float(sum(0.5 * group["weight_decay"] * sum(torch.sum(p * p) for p in group["params"])
                             for group in self.optimizer.param_groups))

    def state(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        """The canonical kinds of one parameter's state (zeros before the first step, as torch starts them)."""
        held = self.optimizer.state.get(param, {})
        return {kind: held[STATE_KEYS[kind]].detach() if STATE_KEYS[kind] in held else torch.zeros_like(param).detach()
                for kind in self.training.state_kinds()}

    def restart_at(self, step: int, states: dict[torch.Tensor, dict[str, torch.Tensor]]) -> None:
        """A new optimiser holding `states` (canonical kinds by parameter) after `step` updates, its scheduler
        moved on as many."""
        self.optimizer = _optimizer(self.training, self.params)
        self.scheduler = _scheduler(self.training, self.optimizer)
        if self.scheduler is not None:
            with warnings.catch_warnings():  # stepping a scheduler before any optimizer.step() is the point here
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(step):
                    self.scheduler.step()
        counted = self.training.optimizer not in ("sgd", "momentum", "nesterov")  # these keep no step count
        for param, kinds in states.items():
            held = {STATE_KEYS[kind]: value for kind, value in kinds.items()}
            if counted:
                held["step"] = torch.tensor(float(step))
            if held:
                self.optimizer.state[param] = held
