"""Learning-rate schedules: a short text (`--schedule cosine:warmup=100`), parsed once, and the canonical
learning rate of each optimiser update t = 0, 1, 2, … that every framework's own schedule object follows.

Grammar: NAME[:VALUE…], each VALUE positional (in the order below) or KEY=VALUE.
    constant                              lr
    step:EVERY:GAMMA                      lr · GAMMA^⌊t / EVERY⌋                 (torch StepLR)
    exp:GAMMA                             lr · GAMMA^t                           (torch ExponentialLR)
    cosine[:warmup=W][:min=M][:start=S]   W steps from S·lr (0.01·lr) up to lr in a line, then a half cosine down to
                                          M·lr at the run's end                 (LinearLR, CosineAnnealingLR)
    onecycle[:pct=P][:div=D][:final=F]    torch OneCycleLR (cosine, two phases): lr/D up to lr over the
                                          first P of the run, then down to lr/(D·F) at its last step
cosine and onecycle also take steps=N, the run's number of updates (the command line fills it in).
Counts are optimiser updates, not epochs: a schedule of E epochs is E × the updates per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Each schedule's values in positional order, with their defaults (None: required).
PARAMETERS: dict[str, dict[str, float | None]] = {
    "constant": {},
    "step": {"every": None, "gamma": None},
    "exp": {"gamma": None},
    "cosine": {"warmup": 0, "min": 0.0, "start": 0.01, "steps": None},
    "onecycle": {"pct": 0.3, "div": 25.0, "final": 1e4, "steps": None},
}
COUNTS = ("every", "warmup", "steps")  # whole numbers of updates
SCHEDULES = tuple(PARAMETERS)
GRAMMAR = ("constant | step:EVERY:GAMMA | exp:GAMMA | cosine[:warmup=W][:min=M][:start=S] | "
           "onecycle[:pct=P][:div=D][:final=F]")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: its name and every value (defaults filled in); `steps` is the run's updates where the
    schedule needs them (cosine, onecycle), else None."""

    name: str = "constant"
    values: tuple[tuple[str, float], ...] = field(default=())

    def __getitem__(self, key: str) -> float:
        return dict(self.values)[key]

    @property
    def steps(self) -> int | None:
        found = dict(self.values).get("steps")
        return None if found is None else int(found)

    @property
    def needs_steps(self) -> bool:
        return "steps" in PARAMETERS[self.name]

    def text(self) -> str:
        """The canonical spelling, every value named: what reports and saved runs hold."""
        return ":".join([self.name, *(f"{key}={_number(value)}" for key, value in self.values)])

    def with_steps(self, steps: int) -> Schedule:
        """The schedule over a run of `steps` updates (kept where the text gave its own); check() it after."""
        if not self.needs_steps or self.steps is not None:
            return self
        return Schedule(self.name, (*self.values, ("steps", float(steps))))

    def factor(self, t: int) -> float:
        """The learning rate of update t (0 for the first) as a fraction of the base one."""
        value = dict(self.values)
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            return float(value["gamma"] ** (t // int(value["every"])))
        if self.name == "exp":
            return float(value["gamma"] ** t)
        if self.name == "cosine":
            warmup, floor, start = int(value["warmup"]), value["min"], value["start"]
            if t < warmup:
                return start + (1.0 - start) * t / warmup
            length = int(value["steps"]) - warmup
            return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * min(t - warmup, length) / length)) / 2.0
        # onecycle, as torch's OneCycleLR: its phases end at updates pct·T − 1 and T − 1
        steps, div, final = int(value["steps"]), value["div"], value["final"]
        initial, peak, last = 1.0 / div, 1.0, 1.0 / (div * final)
        rise_end = value["pct"] * steps - 1.0
        if t <= rise_end:
            return _cosine_between(initial, peak, t / rise_end)
        return _cosine_between(peak, last, (t - rise_end) / (steps - 1.0 - rise_end))


def _cosine_between(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (1.0 + math.cos(math.pi * fraction))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def parse(text: str, option: str = "--schedule") -> Schedule:
    """`text` as a Schedule; a ValueError naming `option`, the text and the grammar when it does not parse."""
    if not isinstance(text, str):
        raise ValueError(f"{option} must be a text such as cosine:warmup=100; received: {text!r}")
    name, *parts = text.strip().split(":")
    if name not in PARAMETERS:
        raise ValueError(f"{option} must be one of {GRAMMAR}; received: {text!r} (unknown schedule {name!r})")
    defaults = PARAMETERS[name]
    given: dict[str, float] = {}
    positional = [key for key in defaults if key != "steps"]
    for index, part in enumerate(parts):
        key, equals, raw = part.partition("=")
        if not equals:
            if index >= len(positional) or any("=" in earlier for earlier in parts[:index]):
                raise ValueError(f"{option} {text!r}: {name} takes {_takes(name)}; received the extra value {part!r}")
            key, raw = positional[index], part
        key = key.strip()
        if key not in defaults:
            raise ValueError(f"{option} {text!r}: {name} takes {_takes(name)}; received {key!r}")
        if key in given:
            raise ValueError(f"{option} {text!r}: {key} given twice")
        try:
            given[key] = float(raw)
        except ValueError:
            raise ValueError(f"{option} {text!r}: {key} must be a number; received {raw!r}") from None
    missing = [key for key, default in defaults.items() if default is None and key not in given and key != "steps"]
    if missing:
        raise ValueError(f"{option} {text!r}: {name} needs {', '.join(missing)} ({_takes(name)})")
    values = tuple((key, given[key] if key in given else float(default))  # type: ignore[arg-type]
                   for key, default in defaults.items() if key in given or default is not None)
    return check(Schedule(name, values), option, text)


def _takes(name: str) -> str:
    keys = list(PARAMETERS[name])
    return ", ".join(keys) if keys else "no values"


def check(schedule: Schedule, option: str = "--schedule", given: str | None = None) -> Schedule:
    """The values' ranges; a warm-up or first phase that does not fit in the run's updates. Errors quote `given`,
    the text as the user wrote it, where there is one."""
    value = dict(schedule.values)
    text = given or schedule.text()

    def refuse(key: str, allowed: str) -> ValueError:
        return ValueError(f"{option} {text!r}: {key} must be {allowed}; received {_number(value[key])}")

    for key, number in value.items():
        if not math.isfinite(number):
            raise refuse(key, "a finite number")
        if key in COUNTS and (number != int(number) or number < (0 if key == "warmup" else 1)):
            raise refuse(key, "a whole number of updates" + (" >= 0" if key == "warmup" else " >= 1"))
    for key in ("gamma", "div", "final"):
        if key in value and value[key] <= 0:
            raise refuse(key, "> 0")
    if "min" in value and not 0 <= value["min"] <= 1:
        raise refuse("min", "a fraction of --lr from 0 to 1")
    if "start" in value and not 0 < value["start"] <= 1:  # torch's LinearLR cannot start at 0
        raise refuse("start", "a fraction of --lr above 0 and at most 1 (torch's LinearLR starts above 0)")
    if "pct" in value and not 0 < value["pct"] < 1:
        raise refuse("pct", "a fraction of the run between 0 and 1")
    steps = schedule.steps
    if steps is not None and schedule.name == "cosine" and value["warmup"] >= steps:
        raise ValueError(f"{option} {text!r}: the warm-up of {int(value['warmup'])} updates is not shorter than the "
                         f"run, {steps} updates")
    if steps is not None and schedule.name == "onecycle" and not 1 < value["pct"] * steps < steps:
        raise ValueError(f"{option} {text!r}: the rise, pct × {steps} updates = {value['pct'] * steps:g}, must be "
                         f"more than 1 update and end before the run does (torch's OneCycleLR)")
    return schedule
