"""What trains a model besides its layers and loss, framework-neutral: the optimiser and its constants, the
learning-rate schedule and the gradient clip. Each framework's module builds its own objects from one of these
(torch_optimizer.py, mxnet_optimizer.py, jax_optimizer.py, tensorflow_optimizer.py); numpy_optimizer.py holds
the canonical formulas, by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import clipping, schedules
from .clipping import Clip
from .schedules import Schedule

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov")  # the ones --momentum applies to
DEFAULT_MOMENTUM = 0.9  # for momentum and nesterov when no momentum is given
DEFAULT_LR = {"adadelta": 1.0}  # where a framework's own default differs from the task's (torch's Adadelta: 1.0)
ADAMW_WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default, when adamw is asked for without a weight decay

# The canonical constants: torch.optim's defaults, given to every framework explicitly.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8  # added to sqrt(v̂), as in Kingma & Ba and torch.optim.Adam
RMSPROP_ALPHA = 0.99  # torch's alpha, Keras's rho, optax's decay
RMSPROP_EPS = 1e-8  # added to sqrt(v), outside the root (torch.optim.RMSprop)
# Adagrad: torch adds ε to √Σg² (1e-10), Keras, optax and MXNet inside the root (1e-7): no ε aligns the two. An
# accumulator that starts at 0.1 (Keras's and optax's default) is never 0, so none is needed: g / √Σg², exactly.
ADAGRAD_EPS = 0.0
ADAGRAD_INITIAL = 0.1
ADADELTA_RHO = 0.9
ADADELTA_EPS = 1e-6  # inside both square roots (torch.optim.Adadelta, Zeiler 2012)

# The optimiser state each keeps per parameter, by canonical name (torch's): what explain compares and replays.
STATE_KINDS = {"momentum": ("velocity",), "nesterov": ("velocity",), "adam": ("m", "v"), "adamw": ("m", "v"),
               "rmsprop": ("square_avg",), "adagrad": ("sum",), "adadelta": ("square_avg", "acc_delta")}


@dataclass(frozen=True)
class Training:
    """The optimiser, its learning rate, momentum and weight decay, the schedule and the clip of one run."""

    optimizer: str = "sgd"
    lr: float = 0.03
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: Schedule = field(default_factory=Schedule)
    clip: Clip | None = None

    @property
    def decoupled(self) -> bool:
        """Whether weight decay is decoupled (AdamW: p ← p − lr·wd·p) rather than an L2 term in the gradient."""
        return self.optimizer == "adamw"

    @property
    def coupled_decay(self) -> float:
        """The L2 factor added to the gradient (wd·p): weight decay, except where it is decoupled."""
        return 0.0 if self.decoupled else self.weight_decay

    def state_kinds(self) -> tuple[str, ...]:
        if self.optimizer in ("sgd", "momentum"):
            return ("velocity",) if self.momentum else ()
        return STATE_KINDS[self.optimizer]

    def lr_at(self, t: int) -> float:
        """The learning rate of update t (0 for the first)."""
        return self.lr * self.schedule.factor(t)


def training_text(training: Training) -> str:
    """"optimizer adam, schedule …, clip …": what trains, as a refusal names it."""
    schedule, clip = training.schedule, training.clip
    return (f"optimizer {training.optimizer}" + (f", schedule {schedule.text()}" if schedule.name != "constant" else "")
            + (f", clip {clip.text()}" if clip is not None else ""))


def described(options: Mapping[str, Any]) -> str:
    """What a run's options add to its optimiser and rate, for report headers: "" or " · schedule … · clip …"."""
    parts = [f"schedule {options['schedule']}" if options.get("schedule") else "",
             f"clip {options['clip']}" if options.get("clip") else "",
             f"label smoothing {options['label_smoothing']:g}" if options.get("label_smoothing") else ""]
    return "".join(f" · {part}" for part in parts if part)


def make_schedule(schedule: str | Schedule | None) -> Schedule:
    """A schedule from its text (or as given); None is constant."""
    if schedule is None:
        return Schedule()
    return schedule if isinstance(schedule, Schedule) else schedules.parse(schedule, "schedule")


def make_clip(clip: str | Clip | None) -> Clip | None:
    if clip is None or isinstance(clip, Clip):
        return clip
    return clipping.parse(clip, "clip")


# Dynamic loss scaling for float16, torch's constants given to each framework (torch/amp/grad_scaler.py:
# init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000); their own defaults differ
# (Keras's LossScaleOptimizer starts at 2**15, jmp's DynamicLossScale has none: README, Reduced precision).
LOSS_SCALE = {"initial": 2.0**16, "growth": 2.0, "backoff": 0.5, "interval": 2000}
