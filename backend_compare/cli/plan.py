"""A run's plan: its checked settings, the problem of each seed, and the backends built (inline) or workers
started (process), everything validated before anything trains or is written."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    RowName,
    available_backends,
    install_hint,
    registration,
)
from ..backends.devices import deterministic_env, resolve
from ..backends.losses import CLASSIFICATION_LOSSES
from ..backends.precision import FULL_DTYPES, check_fits, numerics_of
from ..backends.precision import refuses as refuses_numerics
from ..backends.training import training_of
from ..comparison import memory
from ..comparison.jobs import Job
from ..comparison.run import build_backends
from ..comparison.saved import check_apart, check_out, check_writable_file, plot_format
from ..comparison.threads import limits, share
from ..comparison.workers import Worker, start_all
from ..layers import ModelSpec, input_shapes, out_features
from ..optimizers import Training, schedules, support
from ..optimizers.training import ADAMW_WEIGHT_DECAY, DEFAULT_LR, training_text
from ..tasks import Problem, Task, get_task
from ..tasks.base import given_or_default, model_spec
from .console import UsageError, say
from .options import parse_settings
from .settings import RunSettings, model_of


@dataclass
class Plan:
    """A checked run: everything validated, nothing trained or written yet."""

    settings: RunSettings  # checked: the task and loss filled in
    prog: str  # how the program names itself in what it prints
    seeds: list[int]
    problems: Callable[[int], Problem]
    first: Problem
    options: dict[str, Any]
    backends: dict[str, Backend]  # inline, by row name: built for the first seed while checking the options
    workers: list[Worker]  # process: started, their framework imported
    out: Path | None
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # with the dtype, when the task stores data in it
    setup: dict[str, Any] = field(default_factory=dict)  # lr, epochs and batch_size: given or the task's defaults
    pythons: dict[str, str] = field(default_factory=dict)  # row name -> the interpreter its worker runs
    argv: list[str] = field(default_factory=list)  # as given: the command in a saved run's provenance
    rows: dict[str, RowName] = field(default_factory=dict)  # every row name asked for, parsed
    threads: int | None = None  # each worker's framework threads (None: inline, the process's own)
    env: dict[str, str | None] = field(default_factory=dict)  # what each worker's environment sets for that

    @property
    def names(self) -> list[str]:
        return list(self.backends) + [worker.name for worker in self.workers]

    @property
    def task(self) -> str:
        return str(self.settings.task)


def prepare(argv: list[str], prog: str = "backend-compare", runners: bool = True) -> Plan:
    """A run's command line, parsed and planned; raises UsageError or ValueError with a one-line message."""
    return plan_run(parse_settings(argv, prog), prog, runners, argv)


def plan_run(asked: RunSettings, prog: str, runners: bool = True, argv: list[str] | None = None) -> Plan:
    """Validate the settings and everything they need; raises UsageError or ValueError with a one-line
    message. Without `runners`, no backend is built and no worker started: the options are checked as for
    workers."""
    settings = asked.checked()
    task = get_task(str(settings.task))
    if settings.plot is not None:  # outputs first: a run that could not be saved is not started
        plot_format(settings.plot)
    check_apart({"--data": settings.data} if settings.data is not None else {}, settings.plot, settings.out)
    if settings.plot is not None:
        check_writable_file("--plot", settings.plot)
    out = check_out(settings.out) if settings.out is not None else None
    defaults = task.defaults.get(settings.model or task.default_model, task.defaults[task.default_model])
    setup = {key: given if (given := getattr(settings, key)) is not None else defaults[key]
             for key in ("lr", "epochs", "batch_size")}
    if settings.lr is None and settings.optimizer in DEFAULT_LR:  # adadelta: torch's 1 (MXNet's only rate)
        setup["lr"] = DEFAULT_LR[settings.optimizer]
    weight_decay = settings.weight_decay if settings.weight_decay is not None else (
        ADAMW_WEIGHT_DECAY if settings.optimizer == "adamw" else defaults.get("weight_decay", 0.0))
    task_kwargs = settings.task_kwargs()
    if "dtype" in inspect.signature(task.make_problem).parameters:
        # synthetic data stored in the run's dtype (bfloat16 and float16: the float32 that holds them): no float64 copy
        task_kwargs["dtype"] = numerics_of(settings.dtype, settings.precision).arrays

    def problems(seed: int) -> Problem:
        return task.make_problem(seed=seed, epochs=setup["epochs"], batch_size=setup["batch_size"], **task_kwargs)

    names = settings.row_names(select_backends(settings.backends, prog))
    rows = {name: RowName.parse(name) for name in names}
    check_memory(settings, task, task_kwargs, setup, [row.backend for row in rows.values()], settings.seed_count)
    seeds = settings.seed_list  # --seeds 100000000 is 4 GB of list: made once the memory check has passed
    try:
        first = problems(seeds[0])
    except MemoryError as err:  # what the estimate did not foresee: sizes too large to build at all
        advice = ("a smaller --data file" if settings.data is not None else
                  f"smaller {' or '.join([*size_options(task, settings, 'rows', 'features'), '--epochs'])}")
        raise UsageError(f"the run does not fit in this machine's memory ({memory_error(err)}); use {advice}") \
            from None
    numerics = numerics_of(settings.dtype, settings.precision)
    try:  # data a low precision cannot hold: refused before anything trains
        for split in ("train", "val"):
            check_fits(f"the {split}ing split's inputs", getattr(first, f"X_{split}"), numerics)
            check_fits(f"the {split}ing split's targets", getattr(first, f"y_{split}"), numerics, squared=True)
    except ValueError as err:
        raise UsageError(f"--{'precision' if numerics.mixed else 'dtype'} {numerics.name}: {err}") from None
    options = {"dtype": settings.dtype, "optimizer": settings.optimizer, "lr": setup["lr"],
               "momentum": settings.momentum, "weight_decay": weight_decay, "loss": settings.loss,
               "huber_delta": 1.0 if settings.huber_delta is None else settings.huber_delta,
               "mode": settings.mode[0] if len(settings.mode) == 1 else "usual",  # a row's own :MODE wins
               "schedule": run_schedule(settings.schedule, first), "clip": settings.clip,
               "label_smoothing": settings.label_smoothing or 0.0,
               "class_weights": list(settings.class_weights) if settings.class_weights is not None else None,
               **({"precision": settings.precision} if settings.precision else {}),
               **({"device": settings.device} if settings.device != "cpu" else {}),
               **({"deterministic": True} if settings.deterministic else {})}
    # What trains, checked (no model built: the backends check the rest as they are built)
    training = training_of(*(options[key] for key in ("optimizer", "lr", "momentum", "weight_decay", "schedule",
                                                       "clip")))
    for name, row in list(rows.items()):  # a layer option a framework's layer cannot take: that row, up front
        reason = (_refused(row.backend, first.spec) or _refused_device(row.backend, settings.device)
                  or _refused_numerics(row.backend, settings, training, first.spec, str(settings.loss))
                  or _refused_training(row.backend, training, settings.dtype))
        if reason is not None:
            if settings.backends is not None:  # asked for by name: a usage error; else only installed: a note
                raise UsageError(f"backend {name!r} {reason}")
            say(prog, f"skipping backend {name!r}: {reason}")
            del rows[name]
            names.remove(name)
            if not rows:  # the run asked for something none of the installed backends can do: said above, each
                raise UsageError("none of the installed backends can run this (each one's reason above)")
    backends: dict[str, Backend] = {}
    workers: list[Worker] = []
    pythons: dict[str, str] = {}
    threads, env = 0, {}  # inline: the process's own threads
    if settings.executor == "inline" and runners and settings.deterministic:  # before a framework starts here
        os.environ.update({key: value for key, value in deterministic_env(os.environ).items() if value})
    if settings.executor == "inline" and runners:
        labelled = [name for name, row in rows.items() if row.label]
        if labelled:
            raise UsageError(f"--backends {','.join(labelled)}: another environment needs --executor process")
        for name in names:
            try:
                backends.update(build_backends(first, [rows[name]], options))
            except BackendUnavailable as err:
                unavailable(settings, prog, name, str(err))
    else:
        # The options' checks, without importing a framework here (every mode asked for is one numpy has).
        # Numerics and devices numpy does not run are checked above: the rest in float32 on the CPU.
        checkable = {**options, "device": "cpu"} if numerics_of(settings.dtype, settings.precision).name in \
            FULL_DTYPES else {**options, "dtype": "float32", "precision": None, "device": "cpu"}
        build_backends(first, ["numpy"] + [f"numpy:{row.mode}" for row in rows.values() if row.mode], checkable)
        # ./pyproject.toml is read only when a label is asked for: a user's own broken one stops nothing else
        labels = interpreters(settings.python) if any(row.label for row in rows.values()) else {}
        pythons = {name: python_for(name, row, labels) for name, row in rows.items()}
        # The threads the default --jobs gives, whatever --jobs says: a step is then timed at the same thread count
        # by default and with --jobs 1 (a tiny torch step took 252 us on 1 thread and 764-937 on 2, measured)
        threads = settings.threads or share(min(os.cpu_count() or 1, len(rows)))
        env = limits(threads)
        if settings.deterministic:  # read as each framework starts: set in its worker's environment
            env.update(deterministic_env({**os.environ, **{key: value for key, value in env.items() if value}}))
        if runners:
            workers = start_workers(settings, prog, pythons, env)
            check_capabilities(workers, options["mode"], first.spec)
    return Plan(settings, prog, seeds, problems, first, options, backends, workers, out, task_kwargs, setup,
                pythons if settings.executor != "inline" else {}, list(argv or []), rows,
                threads if settings.executor != "inline" else None, env if settings.executor != "inline" else {})


def jobs_of(plan: Plan, names: list[str], point: dict[str, Any], key: Callable[[str, int], str], *, code: str = "",
            versions: dict[str, str] | None = None, env: dict[str, str | None] | None = None) -> list[Job]:
    """The plan's jobs, seed by seed, each of the rows `names`: `point` names the grid point (a run's is {}),
    `key` names a job by row and seed; `code`, `versions` and `env`: what a sweep's node must match and set."""
    setup = {"epochs": plan.setup["epochs"], "batch_size": plan.setup["batch_size"]}
    settings = {"task": plan.task, **point}
    return [Job(key=key(name, seed), settings=settings, seed=seed, backend=name, task=plan.task,
                task_kwargs=plan.task_kwargs, setup=setup, options=plan.options,
                python=plan.pythons.get(name) if plan.rows[name].label else None, timeout=plan.settings.timeout,
                env=env or {}, code=code, framework=(versions or {}).get(name, ""), init=plan.settings.init,
                record=plan.settings.records)
            for seed in plan.seeds for name in names]


def select_backends(requested: tuple[str, ...] | None, prog: str) -> list[str]:
    if requested is not None:
        return list(requested)
    installed = available_backends()
    for name in BACKENDS:
        if name not in installed:
            say(prog, f"skipping backend {name!r}: {install_hint(name)}")
    return installed


def interpreters(given: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Labels of other environments' interpreters: ./pyproject.toml's [tool.backend-compare.python], then
    --python (which wins)."""
    import tomllib

    found: dict[str, str] = {}
    try:
        table = tomllib.loads(Path("pyproject.toml").read_text()).get("tool", {}).get("backend-compare", {})
        found.update({str(k): str(v) for k, v in table.get("python", {}).items()})
    except FileNotFoundError:
        pass
    except (OSError, tomllib.TOMLDecodeError, AttributeError) as err:
        raise UsageError(f"./pyproject.toml cannot give [tool.backend-compare.python]: {err}") from None
    return {**found, **dict(given)}


def python_for(name: str, row: RowName, labels: dict[str, str]) -> str:
    """The interpreter that runs the row `name`."""
    if not row.label:
        return sys.executable
    if row.label not in labels:
        raise UsageError(f"--backends {name}: no interpreter is labelled {row.label!r}; "
                         f"give --python {row.label}=PATH")
    path = labels[row.label]
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UsageError(f"--python {row.label}={path}: not an executable file")
    return path


def check_capabilities(workers: list[Worker], mode: str, spec: ModelSpec) -> None:
    """A mode a worker's backend lacks, or a layer it cannot build, is a usage error before anything trains
    (inline, constructing the backend says the same)."""
    for worker in workers:
        wanted = worker.mode or mode
        problem = (f"mode must be one of usual, {', '.join(worker.modes)} for the {worker.backend} backend; "
                   f"received: {wanted!r}" if wanted != "usual" and wanted not in worker.modes
                   else worker.cannot_build(spec) or _refused(worker.backend, spec, f"the {worker.backend} backend "))
        if problem is not None:
            for each in workers:
                each.kill()
            raise UsageError(problem)


def _refused(backend: str, spec: ModelSpec, who: str = "") -> str | None:
    """What the framework's layer refuses of a layer's options, asked of its translator here (the translators
    import no framework): as constructing the backend in its worker would say."""
    framework = registration(backend).framework
    for index, (layer, shape) in enumerate(zip(spec, input_shapes(spec), strict=True)):
        translator = layer.translators.get(framework) if framework else None
        reason = (translator().refuses(layer) or translator().refuses_input(layer, shape)
                  if translator is not None else None)
        if reason is not None:
            return f"{who}cannot build layer {index} {layer.describe()}; {reason}"
    return None


def _refused_device(backend: str, device: str) -> str | None:
    """Why a backend cannot run on --device cuda here (no CUDA build of its framework, or no device)."""
    reason = resolve(registration(backend).framework or backend, device)[1]
    return None if reason is None else f"cannot run on --device cuda: {reason}"


def _refused_numerics(backend: str, settings: RunSettings, training: Training, spec: ModelSpec,
                      loss: str) -> str | None:
    """What a framework cannot run of the numerics asked for (backends/precision.py, no framework imported)."""
    numerics = numerics_of(settings.dtype, settings.precision)
    found = registration(backend)
    reason = refuses_numerics(found.framework or backend, numerics, training.optimizer, found.runs, spec,
                              out_features(spec) if loss in CLASSIFICATION_LOSSES else None)
    return None if reason is None else f"cannot run {numerics.name}; {reason}"


def _refused_training(backend: str, training: Training, dtype: str) -> str | None:
    """What the framework's optimisers, schedules and clips cannot follow (optimizers/support.py, no framework
    imported), as constructing the backend would say."""
    reason = support.refuses(registration(backend).framework or "", training, dtype)
    return None if reason is None else f"cannot train with {training_text(training)}; {reason}"


def run_schedule(text: str | None, problem: Problem) -> str | None:
    """The --schedule over the run's updates (cosine and onecycle span it); a UsageError for a schedule that does
    not fit the run (a warm-up as long as it, steps= shorter than it)."""
    if text is None:
        return None
    updates = len(problem.epoch_batches) * problem.epoch_batches.steps_per_epoch
    try:
        schedule = schedules.parse(text, "--schedule")
        if schedule.steps is not None and schedule.steps < updates:
            raise UsageError(f"--schedule {text!r}: steps={schedule.steps} is shorter than the run, {updates} updates "
                             "(epochs × updates per epoch)")
        return schedules.check(schedule.with_steps(updates), "--schedule", text).text()
    except ValueError as err:
        raise UsageError(str(err)) from None


def unavailable(settings: RunSettings, prog: str, name: str, reason: str) -> None:
    """A backend that cannot run: exit 2 when it was asked for, a note when it was only installed."""
    if settings.backends is not None:
        raise UsageError(reason if f"backend {name!r}" in reason else f"backend {name!r} {reason}")
    say(prog, f"skipping backend {name!r}: {reason}")


def start_workers(settings: RunSettings, prog: str, pythons: dict[str, str],
                  env: dict[str, str | None] | None = None) -> list[Worker]:
    """One worker per backend, as many starting at once as there are cores; those that cannot load their
    backend are left out (a usage error when asked for by name)."""
    return start_all(pythons, env, lambda worker, err: unavailable(settings, prog, worker.name, str(err)))


def check_memory(settings: RunSettings, task: Task, task_kwargs: dict[str, Any], setup: dict[str, Any],
                 names: list[str], seeds: int) -> None:
    """Refuse, before anything is built, a run whose estimated memory exceeds what the machine has free."""
    rows, features = task.data_shape(**task_kwargs)
    if not (isinstance(rows, int) and isinstance(features, int) and rows > 0 and features > 0):
        return  # not sizes at all: the task refuses them in its own words
    spec = task.spec_for(**task_kwargs) if task.spec_for is not None else None
    if spec is None:
        model = model_of(settings, task)
        hidden = (list(settings.hidden or ()) or given_or_default(task.make_problem, {}, "hidden")
                  if model == "mlp" else ())
        spec = model_spec(model, features, 1, hidden, settings.activation or "tanh")
    parts = memory.estimate(
        rows=rows, features=features, spec=spec,
        dtype=numerics_of(settings.dtype, settings.precision).arrays, epochs=setup["epochs"],
        batch_size=setup["batch_size"],
        val_fraction=given_or_default(task.make_problem, task_kwargs, "val_fraction"), backends=names,
        optimizer=settings.optimizer, seeds=seeds, record=settings.records,
        parallel=min(settings.jobs, len(names)) if settings.executor == "process" else 1,
        inline=settings.executor == "inline",
        row_option=size_options(task, settings, "rows")[0], feature_option=size_options(task, settings, "features")[0],
        layers_option="--hidden" if settings.given("layers") is None and task.takes("hidden") else "--layers",
        from_file=settings.data is not None, text_bytes=csv_bytes(settings.data))
    memory.check_fits(parts, memory.available_bytes())


def csv_bytes(data: str | None) -> int:
    """The size of a CSV data file (its text, which pyarrow may hold whole while parsing it); 0 for none,
    and for an .npz, whose arrays the estimate counts."""
    if data is None or data.lower().endswith(".npz"):
        return 0
    try:
        return os.path.getsize(data)
    except OSError:  # the task says why it cannot be read, in its own words
        return 0


def memory_error(err: MemoryError) -> str:
    """A MemoryError in words: numpy's says what it could not allocate; Python's own says nothing."""
    return f"MemoryError: {err}" if str(err) else "MemoryError"


def size_options(task: Task, settings: RunSettings, *what: str) -> list[str]:
    """The task's declared options that set the data's `what` ("rows", "features"), those given first: what
    the memory check advises to make smaller. The task itself where none does (its data are fixed)."""
    sizing = [option for option in task.options if option.sizes in (*what, "both")]
    given = [option.flag for option in sizing if settings.given(option.name) is not None]
    return list(dict.fromkeys(given + [option.flag for option in sizing])) or [f"--task {task.name}"]
