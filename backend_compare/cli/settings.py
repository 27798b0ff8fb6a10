"""A run's settings, typed: given on the command line (None: not given, the task's default applies), checked
once with one-line errors, written to JSON and read back. Sweep and explain derive theirs with `replace`."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..backends import RowName, registration
from ..optimizers.training import MOMENTUM_OPTIMIZERS
from ..tasks import TASKS, Task, get_task, task_options
from .console import UsageError

# Settings that are a task's own keywords, as the tasks declare them: passed only when given and only to
# the tasks that take them.
TASK_OPTIONS = tuple(task_options())


@dataclass(frozen=True)
class RunSettings:
    """Everything a run is asked for: task, model, optimiser, loss, dtype, init, mode, data, seeds, where it
    runs and what it reports. Lists are tuples, so settings compare and never change."""

    task: str | None = None
    backends: tuple[str, ...] | None = None  # row names, NAME[@LABEL][:MODE]; None: every installed backend
    seed: tuple[int, ...] | None = None
    seeds: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    optimizer: str = "sgd"
    momentum: float | None = None
    weight_decay: float | None = None
    loss: str | None = None
    huber_delta: float | None = None
    label_smoothing: float | None = None
    class_weights: tuple[float, ...] | None = None
    schedule: str | None = None  # canonical text (schedules.Schedule.text), the run's steps filled in by the plan
    clip: str | None = None
    dtype: str = "float32"
    precision: str | None = None  # mixed-bfloat16 or mixed-float16: parameters in float32, the layers low
    device: str = "cpu"  # cpu, cuda or auto (cuda where a backend's framework has a CUDA build and a device)
    deterministic: bool | None = None  # each framework's deterministic mode
    init: str = "shared"
    mode: tuple[str, ...] = ("usual",)
    executor: str = "process"
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    python: tuple[tuple[str, str], ...] = ()  # (LABEL, PATH) of other environments' interpreters
    timeout: float | None = None
    threads: int | None = None  # each worker's framework threads; None: the cores shared among the workers
    format: str = "table"
    curves: str | None = None
    plot: str | None = None
    relative: bool | None = None
    out: str | None = None
    quiet: bool = False
    check: bool | None = None  # exit 1 when a pair of backends differs beyond its tolerance
    true_w: tuple[float, ...] | None = None
    true_b: float | None = None
    n_samples: int | None = None
    noise: float | None = None
    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    function: str | None = None
    inputs: int | None = None
    dataset: str | None = None
    model: str | None = None
    data: str | None = None
    target: str | None = None
    header: bool | None = None
    standardize: bool | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # (NAME, value) of options other tasks declare (installed ones)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> RunSettings:
        """From parsed or JSON values (lists become tuples); a task's declared option without a field of its
        own goes into `extra`; a name that is neither is a TypeError."""
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = [name for name in values if name not in fields and name not in TASK_OPTIONS]
        if unknown:
            raise TypeError(f"RunSettings has no setting {', '.join(unknown)}")
        known: dict[str, Any] = {name: _frozen(value) for name, value in values.items() if name in fields}
        extra = tuple(sorted((name, _frozen(value)) for name, value in values.items()
                             if name not in fields and value is not None))
        if extra:
            known["extra"] = extra
        return cls(**known)

    def with_values(self, changes: dict[str, Any]) -> RunSettings:
        """These settings with `changes` (a task's declared option without a field goes into `extra`)."""
        fields = {field.name for field in dataclasses.fields(self)}
        extra = {**dict(self.extra), **{name: _frozen(value) for name, value in changes.items() if name not in fields}}
        unknown = [name for name in extra if name not in TASK_OPTIONS]
        if unknown:
            raise TypeError(f"RunSettings has no setting {', '.join(unknown)}")
        return dataclasses.replace(self, **{name: _frozen(value) for name, value in changes.items() if name in fields},
                                   extra=tuple(sorted((name, value) for name, value in extra.items()
                                                      if value is not None)))

    def given(self, option: str) -> Any:
        """A task option's value; None where it was not given."""
        if option in {field.name for field in dataclasses.fields(self)}:
            return getattr(self, option)
        return dict(self.extra).get(option)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunSettings:
        return cls.from_values(json.loads(text))

    def checked(self) -> RunSettings:
        """Validated: one-line UsageError for settings that do not go together; the task and loss filled in."""
        if self.seed is not None and self.seeds is not None:
            raise UsageError("give --seed or --seeds, not both")
        name = self.task or ("data" if self.data is not None else "linreg")
        if name == "data" and self.data is None:
            raise UsageError("--task data needs --data FILE")
        task = get_task(name)
        loss = self.loss or task.losses[0]  # each task's labels have losses of their own
        if loss not in task.losses:
            raise UsageError(f"--loss {loss} does not suit --task {task.name}: its "
                             f"{'labels' if task.classifies else 'targets'} take "
                             f"{' or '.join(task.losses)}")
        done = dataclasses.replace(self, task=name, loss=loss)
        check_options_apply(done, task)
        return done

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if self.seeds else list(self.seed or [0])

    @property
    def seed_count(self) -> int:
        """len(seed_list), without making the list (--seeds 100000000 is refused before anything is made)."""
        return self.seeds or len(self.seed or [0])

    @property
    def records(self) -> bool:
        """Whether the runs keep their loss curves: something shows or saves them."""
        return bool(self.curves or self.plot or self.out)

    def task_kwargs(self) -> dict[str, Any]:
        """The task's own settings that were given (checked() has checked that the task takes them)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key in TASK_OPTIONS if (value := self.given(key)) is not None}

    def row_names(self, backends: list[str]) -> list[str]:
        """Each backend once per --mode when several are given (NAME:MODE), in order. Two names for one row
        (torch and torch:usual, or torch:usual and torch:eager: torch's usual mode is eager) are refused when
        named in --backends; of --mode's expansion (usual,eager) the first is kept."""
        expanded = len(self.mode) > 1
        names = [f"{name}:{mode}" if expanded and ":" not in name else name
                 for name in backends for mode in self.mode]
        spelt: dict[tuple[str, str, str], str] = {}
        kept = []
        for name in dict.fromkeys(names):  # NAME:MODE given as well as the expansion: once
            row = RowName.parse(name)
            mode = self._runs_in(row)
            same = spelt.setdefault((row.backend, row.label, mode), name)
            if same == name:
                kept.append(name)
            elif same in backends and name in backends:  # both named: the user's mistake, said
                usual = any((RowName.parse(each).mode or self.mode[0]) == "usual" for each in (same, name))
                raise UsageError(f"--backends {same},{name}: the same row twice ({row.backend}"
                                 f"{'@' + row.label if row.label else ''} in mode {mode}"
                                 f"{', its usual mode' if usual else ''}); name it once")
        return kept

    def _runs_in(self, row: RowName) -> str:
        """The mode a row runs in: its own, else the run's; "usual" as its backend's registration says it."""
        mode = row.mode or self.mode[0]
        if mode == "usual":
            try:
                return registration(row.backend).usual_mode or mode
            except KeyError:  # a name no registry knows: select_backends refuses it in its own words
                return mode
        return mode


def _frozen(value: Any) -> Any:
    return tuple(_frozen(item) for item in value) if isinstance(value, list | tuple) else value


def model_of(settings: RunSettings, task: Task) -> str:
    return str(settings.model or task.default_model)


def _task_takes(keyword: str) -> Callable[[RunSettings, Task], bool]:
    return lambda settings, task: task.takes(keyword)


def _tasks_taking(keyword: str) -> str:
    return "--task " + " or ".join(task_options()[keyword][1])


# Every option that applies only to some runs: when it applies, in words, and what this run is instead.
# One table, so every option that does not apply is refused the same way: one line, exit 2. A task's own
# options apply to the tasks that declare them.
Rule = tuple[Callable[[RunSettings, Task], bool], str, Callable[[RunSettings, Task], str]]


def _hidden_layers_rule(key: str) -> Rule:
    """An MLP's own option (--hidden, --activation): for a task that takes it, training an MLP of hidden sizes."""
    def applies(a: RunSettings, t: Task) -> bool:
        return t.takes(key) and model_of(a, t) == "mlp" and a.given("layers") is None

    def instead(a: RunSettings, t: Task) -> str:
        if not t.takes(key):
            return f"is --task {t.name}"
        return "gives --layers" if a.given("layers") is not None else "trains a linear model"

    if key == "hidden":  # the recurrent tasks' layers have hidden sizes too
        return applies, ("to an MLP (--task mlp, or --model mlp) or the recurrent layers of --task sequence and "
                         "tokens, without --layers"), instead
    return applies, "to an MLP (--task mlp, or --model mlp) without --layers", instead
OPTION_RULES: dict[str, Rule] = {
    "momentum": (lambda a, t: a.optimizer in MOMENTUM_OPTIMIZERS, "with --optimizer sgd, momentum or nesterov",
                 lambda a, t: f"uses --optimizer {a.optimizer}"),
    "huber_delta": (lambda a, t: a.loss == "huber", "with --loss huber", lambda a, t: f"uses --loss {a.loss}"),
    "label_smoothing": (lambda a, t: a.loss == "cross-entropy", "with --loss cross-entropy",
                        lambda a, t: f"uses --loss {a.loss}"),
    "class_weights": (lambda a, t: a.loss == "cross-entropy", "with --loss cross-entropy",
                      lambda a, t: f"uses --loss {a.loss}"),
    "precision": (lambda a, t: a.dtype == "float32", "with --dtype float32 (it keeps the parameters in float32)",
                  lambda a, t: f"uses --dtype {a.dtype}"),
    "timeout": (lambda a, t: a.executor == "process", "with --executor process", lambda a, t: "runs inline"),
    "threads": (lambda a, t: a.executor == "process", "with --executor process", lambda a, t: "runs inline"),
    "check": (lambda a, t: a.init == "shared", "with --init shared (it checks the backends' parity)",
              lambda a, t: f"uses --init {a.init}: the backends start apart"),
    "relative": (lambda a, t: model_of(a, t) == "linear" and not t.classifies,
                 "to a linear regression (it compares with the exact optimum)",
                 lambda a, t: (f"is --task {t.name}, a classification" if t.classifies else
                               "trains an MLP" if t.takes("activation") else "trains a model of layers")),
    **{key: (_task_takes(key), f"to {_tasks_taking(key)}", lambda a, t: f"is --task {t.name}")
       for key in TASK_OPTIONS if len(task_options()[key][1]) < len(TASKS)},  # every task's own: no rule
    # Two ways of choosing the held-out rows, and a start that only a shared start can take.
    "val_rows": (lambda a, t: t.takes("val_rows") and a.given("val_fraction") is None,
                 "without --val-fraction (the rows it names are the split)",
                 lambda a, t: "gives --val-fraction" if t.takes("val_rows") else f"is --task {t.name}"),
    "init_from": (lambda a, t: t.takes("init_from") and a.init == "shared",
                  "with --init shared (every backend starts from the file)",
                  lambda a, t: f"uses --init {a.init}" if t.takes("init_from") else f"is --task {t.name}"),
    # An MLP's own, where the task trains one (celsius and data train one with --model mlp).
    **{key: _hidden_layers_rule(key) for key in ("hidden", "activation")},
    "cell": (lambda a, t: t.takes("cell") and a.given("layers") is None,
             f"to {_tasks_taking('cell')} without --layers (write the cell among the layers)",
             lambda a, t: "gives --layers" if t.takes("cell") else f"is --task {t.name}"),
    "bias": (lambda a, t: t.takes("bias") and a.given("layers") is None,
             f"to {_tasks_taking('bias')} without --layers (write bias=False in a layer)",
             lambda a, t: "gives --layers" if t.takes("bias") else f"is --task {t.name}"),
    "batchnorm": (lambda a, t: t.takes("batchnorm") and a.given("layers") is None,
                  f"to {_tasks_taking('batchnorm')} without --layers (write batchnorm among the layers)",
                  lambda a, t: "gives --layers" if t.takes("batchnorm") else f"is --task {t.name}"),
}


def check_options_apply(settings: RunSettings, task: Task) -> None:
    for key, (applies, where, instead) in OPTION_RULES.items():
        given = settings.given(key)
        if given is not None and not applies(settings, task):  # None: not given (--no-header gives False)
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} applies only {where}; this run {instead(settings, task)}")
