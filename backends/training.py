"""A backend's optimiser keywords as one checked Training, with the defaults of what was not given."""

from __future__ import annotations

from ..optimizers import Clip, Schedule, Training, make_clip, make_schedule
from ..optimizers.training import ADAMW_WEIGHT_DECAY, DEFAULT_LR, DEFAULT_MOMENTUM, MOMENTUM_OPTIMIZERS, OPTIMIZERS
from .arguments import choice, finite


def training_of(optimizer: str, lr: float | None, momentum: float | None, weight_decay: float | None,
                schedule: str | Schedule | None, clip: str | Clip | None) -> Training:
    """A Training from a backend's keywords, checked (one-line ValueErrors naming the argument) and with the
    defaults of what was not given: lr 0.03 (adadelta: 1, torch's); momentum 0 (momentum and nesterov: 0.9);
    weight decay 0 (adamw: torch's 0.01)."""
    name = choice("optimizer", optimizer, OPTIMIZERS)
    rate = finite("lr", DEFAULT_LR.get(name, 0.03) if lr is None else lr, zero_allowed=False)
    if momentum is not None and name not in MOMENTUM_OPTIMIZERS:
        raise ValueError(f"momentum applies to optimizer {', '.join(MOMENTUM_OPTIMIZERS)}, not {name}; "
                         f"received: momentum={momentum!r}")
    default_momentum = DEFAULT_MOMENTUM if name in ("momentum", "nesterov") else 0.0
    mu = finite("momentum", default_momentum if momentum is None else momentum, zero_allowed=True)
    if name == "nesterov" and not mu:
        raise ValueError("optimizer nesterov needs a momentum > 0 (torch.optim.SGD refuses nesterov without one); "
                         f"received: momentum={momentum!r}")
    decay = finite("weight_decay", (ADAMW_WEIGHT_DECAY if name == "adamw" else 0.0)
                   if weight_decay is None else weight_decay, zero_allowed=True)
    found = Training(name, rate, mu, decay, make_schedule(schedule), make_clip(clip))
    if found.schedule.needs_steps and found.schedule.steps is None:
        raise ValueError(f"schedule {found.schedule.name} needs the run's number of updates, steps=N "
                         f"(e.g. {found.schedule.name}:steps=300); received: {schedule!r}")
    return found
