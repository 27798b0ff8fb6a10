"""Train the same model on NumPy, PyTorch, MXNet Gluon, JAX and TensorFlow and compare them side by side.

    python compare.py --task linreg
    python compare.py --task linreg --backends numpy,torch --dtype float64 --format markdown
    python compare.py --task linreg --true-w=-1,0.5,3 --true-b 0 --noise 0.1 --epochs 5
    python compare.py --task linreg --optimizer adam --lr 0.01 --loss huber --format json
    python compare.py --task mlp --hidden 32,32 --activation relu --function teacher
    python compare.py --task celsius --model mlp --init native
    python compare.py --task mlp --mode eager,compiled --dtype float64
    python compare.py --data measurements.csv --model mlp --hidden 16
    python compare.py --task linreg --seeds 5 --relative --plot curves.png
    python compare.py --task linreg --out runs/before
    python compare.py show runs/before --format markdown
    python compare.py diff runs/before runs/after --threshold 0.1
    python compare.py explain --backends numpy,mxnet --dtype float64 --out why
    python compare.py sweep --lr 0.01,0.03 --batch-size 10,100 --seeds 3 --out sweep1 [--executor dask|ray]
    python compare.py report runs/before             (report.html again, for a saved run or sweep)
    python compare.py --data people.csv --target score --standardize
    python compare.py --task softmax --dataset digits               (classification: accuracy, per class, optimum)
    python compare.py --task classifier --dataset wine --optimizer adam
    python compare.py --task classifier --data animals.csv --target species --hidden 16
"""

from __future__ import annotations

import argparse
import functools
import inspect
import io
import math
import os
import platform
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from tqdm import tqdm

from .backends import (
    BACKENDS,
    LOSSES,
    MODES,
    OPTIMIZERS,
    Backend,
    BackendUnavailable,
    RowName,
    available_backends,
    error_line,
    framework_version,
    install_hint,
    package_version,
    registration,
)
from .comparison import memory
from .comparison.executors import EXECUTORS, Worker, WorkerFailed, run_in_workers, run_inline
from .comparison.html import run_page
from .comparison.provenance import provenance, started_at
from .comparison.report import FORMATS, build_report, combine_seeds, render, seed_tables
from .comparison.run import INIT_MODES, OK, BackendResult, build_backends, reference_result
from .comparison.saved import (
    OutputError,
    check_apart,
    check_out,
    check_writable_file,
    figure_bytes,
    html_page,
    plot_format,
    raise_stop_within,
    save_run,
    write_atomic,
)
from .entry import Terminated, how_stopped, raise_terminated
from .layers import ACTIVATIONS, DTYPES
from .tasks import TASKS, Problem, Task, get_task
from .tasks.base import MODELS, given_or_default, model_spec
from .tasks.labelled import DATASETS
from .tasks.mlp import FUNCTIONS

PROG = "backend-compare"  # how the program names itself; `python compare.py` sets "compare.py"
# CLI option -> task keyword, passed only when given and only to tasks that take it.
TASK_OPTIONS = {key: "--" + key.replace("_", "-") for key in (
    "true_w", "true_b", "n_samples", "noise", "model", "hidden", "activation", "function", "inputs", "data", "target",
    "header", "standardize", "dataset")}


def _model(args: argparse.Namespace, task: Task) -> str:
    return str(args.model or task.default_model)


def _task_takes(keyword: str) -> Callable[[argparse.Namespace, Task], bool]:
    return lambda args, task: keyword in inspect.signature(task.make_problem).parameters


def _tasks_taking(keyword: str) -> list[str]:
    return [name for name in TASKS if keyword in inspect.signature(get_task(name).make_problem).parameters]


# Every option that applies only to some runs: when it applies, in words, and what this run is instead.
# One table, so every option that does not apply is refused the same way: one line, exit 2.
Rule = tuple[Callable[[argparse.Namespace, Task], bool], str, Callable[[argparse.Namespace, Task], str]]
OPTION_RULES: dict[str, Rule] = {
    "momentum": (lambda a, t: a.optimizer in ("sgd", "momentum"), "with --optimizer sgd or momentum",
                 lambda a, t: f"uses --optimizer {a.optimizer}"),
    "huber_delta": (lambda a, t: a.loss == "huber", "with --loss huber", lambda a, t: f"uses --loss {a.loss}"),
    "hidden": (lambda a, t: _model(a, t) == "mlp", "to an MLP (--task mlp, or --model mlp)",
               lambda a, t: "trains a linear model"),
    "activation": (lambda a, t: _model(a, t) == "mlp", "to an MLP (--task mlp, or --model mlp)",
                   lambda a, t: "trains a linear model"),
    "timeout": (lambda a, t: a.executor == "process", "with --executor process", lambda a, t: "runs inline"),
    "relative": (lambda a, t: _model(a, t) == "linear" and not t.classifies,
                 "to a linear regression (it compares with the exact optimum)",
                 lambda a, t: "trains an MLP" if _model(a, t) == "mlp" else f"is --task {t.name}, a classification"),
    **{key: (_task_takes(key), f"to --task {' or '.join(_tasks_taking(key))}", lambda a, t: f"is --task {t.name}")
       for key in TASK_OPTIONS if key not in ("hidden", "activation")},
}


def check_options_apply(args: argparse.Namespace, task: Task) -> None:
    for key, (applies, where, instead) in OPTION_RULES.items():
        given = getattr(args, key)
        if given is not None and not applies(args, task):  # None: not given (--no-header gives False)
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} applies only {where}; this run {instead(args, task)}")


class UsageError(Exception):
    """A user's mistake: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 2,-3.4; received: {text!r}") from None


def _sizes(text: str) -> list[int]:
    message = f"expected comma-separated positive integers such as 32,32; received: {text!r}"
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(message)
    return sizes


def _seeds(text: str) -> list[int]:
    parts = text.split(",")
    if not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"expected non-negative integers such as 0 or 0,1,2; received: {text!r}")
    return [int(part) for part in parts]


def _modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",")]
    if not set(modes) <= set(MODES) or len(set(modes)) < len(modes):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(MODES)}, or several once each such as "
                                         f"eager,compiled; received: {text!r}")
    return modes


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0; received: {text!r}")
    return value


def _interpreter(text: str) -> tuple[str, str]:
    label, equals, path = text.partition("=")
    if not equals or not label.isidentifier() or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH such as np2=/opt/np2/bin/python; received: {text!r}")
    return label, path


def interpreters(given: list[tuple[str, str]]) -> dict[str, str]:
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


def _python_for(name: str, labels: dict[str, str]) -> str:
    """The interpreter that runs the row `name` (NAME[@LABEL][:MODE])."""
    label = RowName.parse(name).label
    if not label:
        return sys.executable
    if label not in labels:
        raise UsageError(f"--backends {name}: no interpreter is labelled {label!r}; give --python {label}=PATH")
    path = labels[label]
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise UsageError(f"--python {label}={path}: not an executable file")
    return path


def _backend_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    rows = [(name, RowName.parse(name)) for name in names]
    unknown = [name for name, row in rows if row.backend not in BACKENDS or ("@" in name and not row.label)
               or (":" in name and row.mode not in MODES)]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected names from {', '.join(BACKENDS)}, each with an optional "
                                         f"@LABEL of --python and :MODE of {', '.join(MODES)}; received: {text!r}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"expected each backend once; received {', '.join(twice)} more than once "
                                         f"in {text!r}")
    return names


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=(__doc__ or "").replace("python compare.py", PROG),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, help="default: linreg, or data when --data is given")
    parser.add_argument("--backends", type=_backend_names, default=None,
                        help=f"comma-separated, from {','.join(BACKENDS)} (default: every installed one); "
                             "NAME@LABEL runs NAME with the interpreter --python gives LABEL, NAME:MODE in that mode")
    parser.add_argument("--seed", type=_seeds, help="one seed or several, e.g. 0,1,2 (default 0): data, init, batches")
    parser.add_argument("--seeds", type=_count, help="run seeds 0..N-1 and report mean and standard deviation")
    parser.add_argument("--epochs", type=int, help="default: the task's reference setting")
    parser.add_argument("--lr", type=float, help="learning rate (default: the task's reference setting)")
    parser.add_argument("--batch-size", type=int, help="default: the task's reference setting")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--momentum", type=float, help="for sgd and momentum (default 0 and 0.9)")
    parser.add_argument("--weight-decay", type=float,
                        help="L2 penalty added to the gradient (default 0; softmax: 1e-3, which gives its "
                             "separable data sets a finite optimum)")
    parser.add_argument("--loss", choices=LOSSES,
                        help="default mse; cross-entropy (on logits, class indices as labels) for softmax and "
                             "classifier, the only loss they take")
    parser.add_argument("--huber-delta", type=float, help="for --loss huber (default 1)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--init", choices=INIT_MODES, default="shared",
                        help="shared: the task's initial parameters and batches for every backend; native: each "
                             "framework's own initialiser and data loader, seeded by --seed")
    parser.add_argument("--mode", type=_modes, default=["usual"],
                        help="how each training step runs: eager (op by op), compiled (torch.compile, jax.jit, "
                             "tf.function, Gluon's hybridize) or usual (as each framework's tutorials do; the "
                             "default); eager,compiled runs every backend both ways")
    running = parser.add_argument_group("where it runs")
    running.add_argument("--executor", choices=EXECUTORS, default="process",
                         help="process: each backend in a worker process of its own (default); inline: all in "
                              "this process")
    running.add_argument("--jobs", type=_count, default=os.cpu_count() or 1,
                         help="workers running at once (default: the number of cores)")
    running.add_argument("--python", action="append", type=_interpreter, metavar="LABEL=PATH", default=[],
                         help="another environment's Python, for NAME@LABEL in --backends (also read from "
                              "[tool.backend-compare.python] of ./pyproject.toml)")
    running.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                         help="a job running longer is stopped and its row says so (process executor)")
    report = parser.add_argument_group("report")
    report.add_argument("--format", choices=FORMATS, default="table")
    report.add_argument("--curves", nargs="?", const="summary", choices=("summary", "all"),
                        help="also print the training and validation loss along the steps: a few points per backend, "
                             "or every evaluated point with --curves all")
    report.add_argument("--plot", metavar="FILE", help="write the loss curves and parity over steps as a PNG")
    report.add_argument("--relative", action="store_true", default=None,
                        help="also show parameter errors against the exact optimum (linear models)")
    report.add_argument("--out", metavar="DIR", help="save results.json, tables (CSV, Markdown) and the plot")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    linreg = parser.add_argument_group("linreg")
    linreg.add_argument("--true-w", type=_floats, help="e.g. 2,-3.4 (use --true-w=-1,2 for a leading minus)")
    linreg.add_argument("--true-b", type=float)
    linreg.add_argument("--n-samples", type=int, help="training plus validation rows (linreg, mlp)")
    linreg.add_argument("--noise", type=float, help="standard deviation of the label noise (linreg, mlp)")
    mlp = parser.add_argument_group("mlp, and celsius or data with --model mlp")
    mlp.add_argument("--hidden", type=_sizes, help="hidden layer sizes, e.g. 13 or 32,32 (default 13)")
    mlp.add_argument("--activation", choices=ACTIVATIONS, help="default tanh")
    mlp.add_argument("--function", choices=FUNCTIONS, help="mlp: the true function (default sin)")
    mlp.add_argument("--inputs", type=int, help="mlp: number of input features (default 1)")
    labelled = parser.add_argument_group("softmax and classifier (--data and --target also apply)")
    labelled.add_argument("--dataset", choices=DATASETS,
                          help="bundled with scikit-learn (default digits: 8×8 images of handwritten digits)")
    data = parser.add_argument_group("celsius and data")
    data.add_argument("--model", choices=MODELS, help="default linear")
    data.add_argument("--data", help="a CSV (with a header line or without) or an .npz with X and y")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict: its name, or its position "
                                                         "(1 the first, -1 the last; default the last)")
    data.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                      help="whether the CSV's first line names the columns (default: when it is not all numbers)")
    data.add_argument("--standardize", action="store_true", default=None,
                      help="scale each feature by the training split's mean and standard deviation (reported)")
    return parser


def _task_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The task's own options that were given (check_options_apply has checked that the task takes them)."""
    return {key: getattr(args, key) for key in TASK_OPTIONS if getattr(args, key) is not None}


def _select_backends(requested: list[str] | None) -> list[str]:
    if requested is not None:
        return requested
    installed = available_backends()
    for name in BACKENDS:
        if name not in installed:
            print(f"{PROG}: skipping backend {name!r}: {install_hint(name)}", file=sys.stderr)
    return installed


def row_names(args: argparse.Namespace, backends: list[str]) -> list[str]:
    """Each backend once per --mode when several are given (NAME:MODE), in order."""
    names = [f"{name}:{mode}" if len(args.mode) > 1 and ":" not in name else name
             for name in backends for mode in args.mode]
    return list(dict.fromkeys(names))  # NAME:MODE given as well as the expansion: once


def _warn_on_stderr(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _usage(err: Exception) -> int:
    print(f"{PROG}: error: {err}", file=sys.stderr)
    return 2


@dataclass
class Plan:
    """A checked run: everything validated, nothing trained or written yet."""

    args: argparse.Namespace
    seeds: list[int]
    problems: Callable[[int], Problem]
    first: Problem
    options: dict[str, Any]
    backends: dict[str, Backend]  # inline, by row name: built for the first seed while checking the options
    workers: list[Worker]  # process: started, their framework imported
    out: Path | None
    task: str = ""
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # with the dtype, when the task stores data in it
    setup: dict[str, Any] = field(default_factory=dict)  # lr, epochs and batch_size: given or the task's defaults
    pythons: dict[str, str] = field(default_factory=dict)  # row name -> the interpreter its worker runs
    argv: list[str] = field(default_factory=list)  # as given: the command in a saved run's provenance

    @property
    def names(self) -> list[str]:
        return list(self.backends) + [worker.name for worker in self.workers]


def prepare(argv: list[str], runners: bool = True) -> Plan:
    """Parse and validate every option; raises UsageError or ValueError with a one-line message. Without
    `runners`, no backend is built and no worker started: the options are checked as for workers."""
    args = make_parser().parse_args(argv)
    if args.seed is not None and args.seeds is not None:
        raise UsageError("give --seed or --seeds, not both")
    seeds = list(range(args.seeds)) if args.seeds else (args.seed or [0])
    args.task = args.task or ("data" if args.data is not None else "linreg")
    if args.task == "data" and args.data is None:
        raise UsageError("--task data needs --data FILE")
    task = get_task(args.task)
    args.loss = args.loss or task.losses[0]  # each task's labels have losses of their own
    if args.loss not in task.losses:
        raise UsageError(f"--loss {args.loss} does not suit --task {task.name}: its labels take "
                         f"{' or '.join(task.losses)}")
    check_options_apply(args, task)
    if args.plot is not None:  # outputs first: a run that could not be saved is not started
        plot_format(args.plot)
        check_writable_file("--plot", args.plot)
    check_apart({"--data": args.data} if args.data is not None else {}, args.plot, args.out)
    out = check_out(args.out) if args.out is not None else None
    defaults = task.defaults.get(args.model or task.default_model, task.defaults[task.default_model])
    setup = {key: getattr(args, key) if getattr(args, key) is not None else defaults[key]
             for key in ("lr", "epochs", "batch_size")}
    weight_decay = args.weight_decay if args.weight_decay is not None else defaults.get("weight_decay", 0.0)
    task_kwargs = _task_kwargs(args)
    if "dtype" in inspect.signature(task.make_problem).parameters:
        task_kwargs["dtype"] = args.dtype  # synthetic data stored in the run's dtype: no float64 copy

    def problems(seed: int) -> Problem:
        return task.make_problem(seed=seed, epochs=setup["epochs"], batch_size=setup["batch_size"], **task_kwargs)

    names = row_names(args, _select_backends(args.backends))
    check_memory(args, task, task_kwargs, setup, [RowName.parse(name).backend for name in names], len(seeds))
    first = problems(seeds[0])
    options = {"dtype": args.dtype, "optimizer": args.optimizer, "lr": setup["lr"], "momentum": args.momentum,
               "weight_decay": weight_decay, "loss": args.loss,
               "huber_delta": 1.0 if args.huber_delta is None else args.huber_delta,
               "mode": args.mode[0] if len(args.mode) == 1 else "usual"}  # a row's own :MODE wins
    backends: dict[str, Backend] = {}
    workers: list[Worker] = []
    if args.executor == "inline" and runners:
        labelled = [name for name in names if "@" in name]
        if labelled:
            raise UsageError(f"--backends {','.join(labelled)}: another environment needs --executor process")
        for name in names:
            try:
                backends.update(build_backends(first, [name], options))
            except BackendUnavailable as err:
                _unavailable(args, name, str(err))
    else:
        # The options' checks, without importing a framework here (every mode asked for is one numpy has).
        build_backends(first, ["numpy"] + [f"numpy:{RowName.parse(name).mode}" for name in names if ":" in name],
                       options)
        # ./pyproject.toml is read only when a label is asked for: a user's own broken one stops nothing else
        labels = interpreters(args.python) if any("@" in name for name in names) else {}
        pythons = {name: _python_for(name, labels) for name in names}
        if runners:
            workers = _start_workers(args, pythons)
            _check_modes(workers, options["mode"])
    return Plan(args, seeds, problems, first, options, backends, workers, out, args.task, task_kwargs, setup,
                pythons if args.executor != "inline" else {}, list(argv))


def _check_modes(workers: list[Worker], mode: str) -> None:
    """A mode a worker's backend lacks is a usage error before anything trains (inline, constructing it
    says the same)."""
    for worker in workers:
        wanted = worker.mode or mode
        if wanted != "usual" and wanted not in worker.modes:
            for each in workers:
                each.kill()
            raise UsageError(f"mode must be one of usual, {', '.join(worker.modes)} for the {worker.backend} backend; "
                             f"received: {wanted!r}")


def _unavailable(args: argparse.Namespace, name: str, reason: str) -> None:
    """A backend that cannot run: exit 2 when it was asked for, a note when it was only installed."""
    if args.backends is not None:
        raise UsageError(reason)
    print(f"{PROG}: skipping backend {name!r}: {reason}", file=sys.stderr)


def _start_workers(args: argparse.Namespace, pythons: dict[str, str]) -> list[Worker]:
    """One worker per backend, all starting at once; those that cannot load their backend are left out."""
    started = [Worker(name, python) for name, python in pythons.items()]
    ready = []
    try:
        for worker in started:
            try:
                worker.start()
                ready.append(worker)
            except WorkerFailed as err:
                worker.kill()
                _unavailable(args, worker.name, str(err))
    except BaseException:  # a usage error or a signal: no worker outlives the program
        for worker in started:
            worker.kill()
        raise
    return ready


def check_memory(args: argparse.Namespace, task: Task, task_kwargs: dict[str, Any], setup: dict[str, Any],
                 names: list[str], seeds: int) -> None:
    """Refuse, before anything is built, a run whose estimated memory exceeds what the machine has free."""
    rows, features = task.data_shape(**task_kwargs)
    if not (isinstance(rows, int) and isinstance(features, int) and rows > 0 and features > 0):
        return  # not sizes at all: the task refuses them in its own words
    model = _model(args, task)
    hidden = args.hidden or given_or_default(task.make_problem, {}, "hidden") if model == "mlp" else ()
    activation = args.activation or "tanh"
    parts = memory.estimate(
        rows=rows, features=features, spec=model_spec(model, features, 1, hidden, activation), dtype=args.dtype,
        epochs=setup["epochs"], batch_size=setup["batch_size"],
        val_fraction=given_or_default(task.make_problem, {}, "val_fraction"), backends=names,
        optimizer=args.optimizer, seeds=seeds, record=bool(args.curves or args.plot or args.out),
        parallel=min(args.jobs, len(names)) if args.executor == "process" else 1,
        row_option="--data" if args.data else "--n-samples",
        feature_option={"linreg": "--true-w", "mlp": "--inputs"}.get(task.name, "--data"),
        from_file=args.data is not None)
    memory.check_fits(parts, memory.available_bytes())


def execute(plan: Plan) -> int:
    """Train every backend for every seed, print the report, then save what was asked for. Exit 0; 1 if a
    backend diverged or failed or a file could not be written; 130 on Ctrl-C and 143 on SIGTERM, after
    printing what finished and writing no file."""
    args = plan.args
    record = bool(args.curves or args.plot or args.out)
    started = started_at()
    per_seed, seeds_run = [], []
    optimum: str | None = None  # the reference row's name, when the model has an exact optimum
    progress = tqdm(total=len(plan.seeds) * len(plan.names) * len(plan.first.epoch_batches), unit="epoch",
                    file=sys.stderr, delay=2, leave=False, disable=True if args.quiet else None)  # None: tty only

    def finish_seed(seed: int, problem: Problem, results: list[BackendResult]) -> None:
        nonlocal optimum
        reference = reference_result(problem, plan.options)
        optimum = reference.backend if reference else None
        per_seed.append(seed_tables(problem, results + ([reference] if reference else []), bool(args.relative),
                                    args.init))
        seeds_run.append(seed)

    with progress:
        stop = _run_seeds(plan, record, finish_seed, progress.update,
                          lambda seed, name: progress.set_description(f"seed {seed} {name}"))
    stopped_by = how_stopped(stop) if stop is not None else None

    header = {"task": plan.first.task, "settings": plan.first.settings, "seeds": seeds_run, "reference": optimum,
              "options": {**plan.options, "mode": ",".join(args.mode), "init": args.init, "curves": args.curves,
                          "relative": bool(args.relative),
                          "parallel": min(args.jobs, len(plan.workers)) if plan.workers else 1}}
    elsewhere = {worker.name: " · ".join(f"{k} {v}" for k, v in worker.versions.items())
                 for worker in plan.workers if "@" in worker.name}
    if elsewhere:  # rows from other environments: what each of them runs
        header["environments"] = elsewhere
    if plan.out is not None:
        header["provenance"] = provenance(PROG, plan.argv, started, _environments(plan), args.data)
    report = build_report(header, combine_seeds(per_seed))
    write_stdout(render(report, args.format))
    if stopped_by:
        print(f"{PROG}: {stopped_by[0]}: showing the runs that finished; no file was written", file=sys.stderr)
        return stopped_by[1]
    written: list[str] = []
    try:
        save_outputs(plan, report, written)
    except (KeyboardInterrupt, Terminated) as stop:  # the tables are out; say exactly what is on disk
        how, code = how_stopped(stop)
        print(f"{PROG}: {how} while saving; {_on_disk(written)}", file=sys.stderr)
        return code
    except (OSError, ValueError) as err:  # disk full, a folder in the way: the tables are out already
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        print(f"{PROG}: error: the results could not be saved: {reason}; {_on_disk(written)}", file=sys.stderr)
        return 1
    stopped = [f"{row['backend']} {row['status']}" for row in report["summary"] if row["status"] != OK]
    if stopped:
        print(f"{PROG}: {len(stopped)} of {len(report['summary'])} backends did not finish: " + "; ".join(stopped),
              file=sys.stderr)
        return 1
    return 0


def _environments(plan: Plan) -> dict[str, dict[str, str]]:
    """Per row: its framework's version, Python's and NumPy's, where it ran."""
    here = {"python": platform.python_version(), "numpy": package_version("numpy")}
    def framework(backend: str, version: str) -> str:
        return f"{registration(backend).framework or 'numpy'} {version}"

    found = {name: {**here, "framework": framework(RowName.parse(name).backend, framework_version(
        RowName.parse(name).backend))} for name in plan.backends}
    for worker in plan.workers:
        found[worker.name] = {"python": worker.versions.get("python", "?"), "numpy": worker.versions.get("numpy", "?"),
                              "framework": framework(worker.backend, worker.versions.get(worker.backend, "?")),
                              **({"interpreter": worker.python} if "@" in worker.name else {})}
    return found


def save_outputs(plan: Plan, report: dict[str, Any], written: list[str]) -> None:
    """The plot file and the run folder, each whole or not at all; `written` lists those that are done.
    A plot or page that cannot be made does not stop the run folder: it is saved without them, then the
    error is raised."""
    if not (plan.args.plot or plan.out):
        return
    formats = [plot_format(plan.args.plot)] if plan.args.plot else []
    rendered: dict[str, bytes] = {}  # format -> bytes: the run folder's PNG and a --plot PNG are drawn once
    failures = []
    try:
        rendered = _drawn(report, formats + ["png"] * (plan.out is not None))
    except OutputError as err:
        failures.append(err)
    if formats and formats[0] in rendered:
        write_atomic(Path(plan.args.plot), rendered[formats[0]])
        written.append(plan.args.plot)
    if plan.out is not None:
        page = None
        try:
            page = html_page(lambda: run_page(report))
        except OutputError as err:
            failures.append(err)
        save_run(plan.out, report, rendered.get("png"), page)
        written.append(str(plan.out))
    if failures:
        raise failures[0]


def _drawn(report: dict[str, Any], formats: list[str]) -> dict[str, bytes]:
    """The loss figure in each format; matplotlib failing in any way (a broken install, a back-end, a
    font) is one line."""
    if not report.get("curves"):
        warnings.warn("no backend finished an epoch: there is no loss curve to plot", stacklevel=1)
        return {}
    try:
        from .comparison.plot import loss_figure

        figure = loss_figure(report)
        return {fmt: figure_bytes(figure, fmt) for fmt in dict.fromkeys(formats)}
    except Exception as err:
        raise_stop_within(err)
        raise OutputError(f"the plot could not be drawn: {error_line(err)}") from err


def _on_disk(written: list[str]) -> str:
    return f"written whole: {', '.join(written)}; nothing else" if written else "nothing was written"


def run_main(argv: list[str]) -> int:
    try:
        plan = prepare(argv)
    except (UsageError, ValueError) as err:
        return _usage(err)
    except MemoryError as err:  # what the estimate did not foresee: sizes too large to build at all
        return _usage(UsageError(f"the run does not fit in this machine's memory ({err or 'MemoryError'}); "
                                 "use smaller --n-samples, --epochs, --hidden or --inputs"))
    if not plan.names:
        print(f"{PROG}: error: no backend could run", file=sys.stderr)
        return 1
    return execute(plan)


def show_main(argv: list[str]) -> int:
    from .comparison.saved import load_run
    from .sweep_command import is_sweep, show_sweep

    parser = _Parser(prog=f"{PROG} show", description="Print the tables of a run or a sweep saved with --out.")
    parser.add_argument("run", metavar="DIR")
    parser.add_argument("--format", choices=FORMATS, default="table")
    try:
        args = parser.parse_args(argv)
        if is_sweep(args.run):
            write_stdout(show_sweep(args.run, args.format))
            return 0
        report = load_run(args.run)
    except (UsageError, ValueError) as err:
        return _usage(err)
    write_stdout(render(report, args.format))
    return 0


def diff_main(argv: list[str]) -> int:
    from .comparison.saved import diff_runs, differing_settings, load_run
    from .sweep_command import is_sweep

    parser = _Parser(prog=f"{PROG} diff", description="What changed between two saved runs of the same settings, per "
                                                      "backend and metric; exit 1 when something got worse.")
    parser.add_argument("run_a", metavar="DIR_A")
    parser.add_argument("run_b", metavar="DIR_B")
    parser.add_argument("--threshold", type=float, default=0.1, help="relative rise that counts as worse (0.1)")
    parser.add_argument("--atol", type=float, default=1e-12, help="absolute rise below which nothing is worse")
    parser.add_argument("--force", action="store_true", help="compare runs whose settings differ")
    try:
        args = parser.parse_args(argv)
        if not args.threshold >= 0 or not args.atol >= 0:
            raise UsageError(f"--threshold and --atol must be >= 0; received: {args.threshold}, {args.atol}")
        sweeps = [is_sweep(args.run_a), is_sweep(args.run_b)]
        if any(sweeps):
            if not all(sweeps):
                raise UsageError(f"{args.run_a if sweeps[0] else args.run_b} is a sweep and the other is a run: diff "
                                 "compares two runs or two sweeps")
            return _diff_sweeps(args)
        old, new = load_run(args.run_a), load_run(args.run_b)
        differing = differing_settings(old, new)
        if differing and not args.force:
            raise UsageError(f"the runs differ in {len(differing)} setting(s), so their numbers are not comparable: "
                             + "; ".join(differing) + " (--force compares them anyway)")
        table = diff_runs(old, new, args.threshold, args.atol)
    except (UsageError, ValueError) as err:
        return _usage(err)
    shown = table.astype(object).where(table.notna(), "-")
    for column in ("A", "B"):
        shown[column] = [value if value == "-" else f"{value:.4g}" for value in shown[column]]
    shown["change"] = [value if value == "-" else f"{value:+.1%}" for value in shown["change"]]
    print(f"A = {args.run_a}, B = {args.run_b}" + (" (settings differ: --force)" if differing else ""))
    print(shown.to_string(index=False))
    worse = table[table["verdict"] == "WORSE"]
    if len(worse):
        print(f"{PROG} diff: {len(worse)} regression(s): "
              + ", ".join(f"{row.backend} {row.metric}" for row in worse.itertuples()), file=sys.stderr)
        return 1
    return 0


def report_main(argv: list[str]) -> int:
    """report.html of a saved run or sweep, written (again) into its folder."""
    from .comparison.saved import HTML, html_page, load_run
    from .sweep_command import is_sweep, sweep_report

    parser = _Parser(prog=f"{PROG} report", description="Write DIR/report.html for a run or sweep saved with --out: "
                                                         "one self-contained page, no network needed to open it.")
    parser.add_argument("run", metavar="DIR")
    try:
        args = parser.parse_args(argv)
        make = sweep_report(args.run) if is_sweep(args.run) else functools.partial(run_page, load_run(args.run))
    except (UsageError, ValueError) as err:  # the folder: the user's to mend
        return _usage(err)
    try:
        page = html_page(make)
    except OutputError as err:  # plotly failing: the environment's
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    target = Path(args.run) / HTML
    try:
        write_atomic(target, page.encode())
    except OSError as err:
        print(f"{PROG}: error: {target} could not be written: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"{target} ({len(page) / 1e6:.1f} MB)")
    return 0


def _diff_sweeps(args: argparse.Namespace) -> int:
    """Two sweeps, point by point and seed by seed; exit 1 when a change is a regression outside the noise."""
    from .sweep_command import diff_sweep_folders

    table, heading = diff_sweep_folders(args.run_a, args.run_b, args.threshold, args.atol)
    shown = table.astype(object).where(table.notna(), "-")
    for column in ("A", "B", "change", "ci_low", "ci_high"):
        shown[column] = [value if value == "-" else f"{value:.4g}" for value in shown[column]]
    write_stdout(f"{heading}\n{shown.to_string(index=False)}\n")
    worse = table[table["verdict"] == "WORSE"]
    if len(worse):
        print(f"{PROG} diff: {len(worse)} regression(s) outside the noise: "
              + ", ".join(f"{row.backend} {row.metric}" for row in worse.head(10).itertuples()), file=sys.stderr)
        return 1
    return 0


def explain_main(argv: list[str]) -> int:
    """Where and why backends part ways, from the run's shared start; exit 1 when a pair differs."""
    from .comparison.explain import Explainer, render_explained
    from .comparison.html import explain_page
    from .comparison.repro import check_bundle_folder, write_bundle

    global PROG
    run_prog, PROG = PROG, f"{PROG} explain"
    try:
        argv, out_given = _without_out(argv)  # explain's --out is a repro bundle, not a run folder
        out = check_bundle_folder(out_given) if out_given is not None else None
        plan = prepare(["--executor", "inline", *argv] if "--executor" not in argv else argv)
        if plan.args.executor != "inline":
            raise UsageError("explain steps the backends side by side in this process: --executor inline")
        if plan.args.init != "shared" or len(plan.seeds) > 1:
            raise UsageError("explain compares backends from one shared start: give one --seed and --init shared")
        if len(plan.backends) < 2:
            raise UsageError(f"explain needs two backends or more; received: {', '.join(plan.backends) or 'none'}")
        shown = [option for option, given in (("--plot", plan.args.plot), ("--curves", plan.args.curves),
                                              ("--relative", plan.args.relative)) if given]
        if shown:
            raise UsageError(f"{', '.join(shown)}: explain reports where backends part ways, not curves or plots")
    except (UsageError, ValueError) as err:
        return _usage(err)
    finally:
        PROG = run_prog
    try:
        findings = Explainer(plan.first, plan.backends, plan.options).run()
    except NotImplementedError as err:  # a backend of one's own without the replay hooks
        return _usage(err)
    header = {"task": plan.first.task, "settings": plan.first.settings, "seeds": plan.seeds,
              "options": {**plan.options, "mode": ",".join(plan.args.mode), "init": "shared"}}
    write_stdout(render_explained(header, findings, plan.args.format))
    if out is not None:
        try:
            text = render_explained(header, findings, "table")
            page, failure = None, None
            try:
                page = html_page(lambda: explain_page(header, findings, text))
            except OutputError as err:
                failure = err
            write_bundle(out, plan.first, plan.options, findings, text, page)
            if failure is not None:
                print(f"{PROG}: error: {failure}; the bundle is written without it", file=sys.stderr)
                return 1
        except (OSError, ValueError) as err:  # a full disk, or the folder filled by someone else meanwhile
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            print(f"{PROG}: error: the bundle could not be written: {reason}; nothing was written",
                  file=sys.stderr)
            return 1
    return 1 if any(not finding.agree for finding in findings) else 0


def _run_seeds(plan: Plan, record: bool, finish_seed: Callable[[int, Problem, list[BackendResult]], None],
               on_progress: Callable[[int], object], on_start: Callable[[int, str], object]) -> BaseException | None:
    """Every seed of a checked plan on its executor, the workers closed after; the signal that stopped it."""
    def problem(seed: int) -> Problem:  # the first seed's was made while checking the options
        return plan.first if seed == plan.seeds[0] else plan.problems(seed)

    def describe(stop: BaseException) -> str:
        return how_stopped(stop)[0]

    if plan.workers:
        try:
            return run_in_workers(plan.workers, problem, plan.seeds, job={
                "options": plan.options, "init": plan.args.init, "record": record}, jobs=plan.args.jobs,
                timeout=plan.args.timeout, on_progress=on_progress, describe=describe, finish_seed=finish_seed)
        finally:
            for worker in plan.workers:
                worker.close()
    return run_inline(
        lambda seed, problem: plan.backends if seed == plan.seeds[0] else build_backends(
            problem, plan.names, plan.options),
        problem, plan.seeds, init=plan.args.init, record=record, on_epoch=lambda: on_progress(1), on_start=on_start,
        describe=describe, finish_seed=finish_seed)


def _dropped(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv without these options and their values."""
    kept, items = [], iter(argv)
    for item in items:
        if item in options:
            next(items, None)
        elif not item.startswith(tuple(f"{option}=" for option in options)):
            kept.append(item)
    return kept


def _without_out(argv: list[str]) -> tuple[list[str], str | None]:
    """argv without --out DIR (or --out=DIR), and DIR."""
    out = None
    for index, item in enumerate(argv):
        if item == "--out":
            if index + 1 == len(argv):
                raise UsageError("argument --out: expected one argument")
            out = argv[index + 1]
        elif item.startswith("--out="):
            out = item.removeprefix("--out=")
    return _dropped(argv, ("--out",)), out


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The program: `run` (the default), `show DIR`, `diff DIR_A DIR_B`, `explain`, `sweep` or `report DIR`;
    returns the exit code."""
    global PROG
    PROG = prog or "backend-compare"
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show '·' or 'δ' gets escapes, not a traceback
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else argv
    commands = {"show": show_main, "diff": diff_main, "explain": explain_main, "sweep": _sweep, "report": report_main}
    command = commands.get(argv[0]) if argv else None
    previous_warning, warnings.showwarning = warnings.showwarning, _warn_on_stderr
    # Python lets only the main thread set a signal handler; called from another thread, SIGTERM is left alone.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, raise_terminated) if on_main_thread else None
    try:
        return command(argv[1:]) if command else run_main(argv)
    except (KeyboardInterrupt, Terminated) as stop:  # training and saving handle their own: imports, checks
        how, code = how_stopped(stop)
        print(f"{PROG}: {how}; no file was written", file=sys.stderr)
        return code
    except BrokenPipeError:  # the reader left (`| head`): not an error of ours, and nothing more to say
        _reader_gone()
        return 0
    finally:
        warnings.showwarning = previous_warning
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous_term)


def _sweep(argv: list[str]) -> int:
    from .sweep_command import sweep_main

    return sweep_main(argv)


def write_stdout(text: str) -> None:
    """Print; a reader that has gone (a closed pipe) is no reason to stop saving the results."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()


def _reader_gone() -> None:
    """stdout's pipe is closed: point it at /dev/null, so the flush at exit raises no second error."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
