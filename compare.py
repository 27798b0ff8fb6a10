"""Train the same model on NumPy, PyTorch and MXNet Gluon and compare them side by side.

    python compare.py --task linreg
    python compare.py --task linreg --backends numpy,torch --dtype float64 --format markdown
    python compare.py --task linreg --true-w=-1,0.5,3 --true-b 0 --noise 0.1 --epochs 5
    python compare.py --task linreg --optimizer adam --lr 0.01 --loss huber --format json
    python compare.py --task mlp --hidden 32,32 --activation relu --function teacher
    python compare.py --task celsius --model mlp --init native
    python compare.py --data measurements.csv --model mlp --hidden 16
"""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings
from typing import Any, NoReturn

from backends import BACKENDS, LOSSES, OPTIMIZERS, BackendUnavailable, available_backends
from backends.spec import DTYPES
from comparison.report import FORMATS, build_tables, render
from comparison.run import INIT_MODES, build_backends, train
from tasks import TASKS, get_task
from tasks.base import MODELS
from tasks.mlp import FUNCTIONS

PROG = "compare.py"
# CLI option -> task keyword, passed only when given and only to tasks that take it.
TASK_OPTIONS = {key: "--" + key.replace("_", "-") for key in (
    "true_w", "true_b", "n_samples", "noise", "model", "hidden", "activation", "function", "inputs", "data")}


class UsageError(Exception):
    """A user's mistake: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 2,-3.4; received: {text!r}")


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 32,32; received: {text!r}")
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 32,32; received: {text!r}")
    return sizes


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer; received: {text!r}")
    return int(text)


def _backend_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected names from {', '.join(BACKENDS)}; received: {text!r}")
    return names


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=TASKS, help="default: linreg, or data when --data is given")
    parser.add_argument("--backends", type=_backend_names, default=None,
                        help=f"comma-separated, from {','.join(BACKENDS)} (default: every installed one)")
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="seeds data, init and batch order")
    parser.add_argument("--epochs", type=int, help="default: the task's reference setting")
    parser.add_argument("--lr", type=float, help="learning rate (default: the task's reference setting)")
    parser.add_argument("--batch-size", type=int, help="default: the task's reference setting")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    parser.add_argument("--momentum", type=float, help="for sgd and momentum (default 0 and 0.9)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="L2 penalty added to the gradient")
    parser.add_argument("--loss", choices=LOSSES, default="mse")
    parser.add_argument("--huber-delta", type=float, default=1.0)
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--init", choices=INIT_MODES, default="shared",
                        help="shared: the task's initial parameters and batches for every backend; native: each "
                             "framework's own initialiser and data loader, seeded by --seed")
    parser.add_argument("--format", choices=FORMATS, default="table")
    linreg = parser.add_argument_group("linreg")
    linreg.add_argument("--true-w", type=_floats, help="e.g. 2,-3.4 (use --true-w=-1,2 for a leading minus)")
    linreg.add_argument("--true-b", type=float)
    linreg.add_argument("--n-samples", type=int, help="training plus validation rows (linreg, mlp)")
    linreg.add_argument("--noise", type=float, help="standard deviation of the label noise (linreg, mlp)")
    mlp = parser.add_argument_group("mlp, and celsius or data with --model mlp")
    mlp.add_argument("--hidden", type=_sizes, help="hidden layer sizes, e.g. 13 or 32,32 (default 13)")
    mlp.add_argument("--activation", choices=("tanh", "relu", "sigmoid"), help="default tanh")
    mlp.add_argument("--function", choices=FUNCTIONS, help="mlp: the true function (default sin)")
    mlp.add_argument("--inputs", type=int, help="mlp: number of input features (default 1)")
    data = parser.add_argument_group("celsius and data")
    data.add_argument("--model", choices=MODELS, help="default linear")
    data.add_argument("--data", help="CSV with a header (last column the target) or .npz with X and y")
    return parser


def _task_kwargs(args: argparse.Namespace, make_problem: Any) -> dict[str, Any]:
    accepted = inspect.signature(make_problem).parameters
    kwargs = {}
    for key, flag in TASK_OPTIONS.items():
        value = getattr(args, key)
        if value is None:
            continue
        if key not in accepted:
            raise UsageError(f"{flag} does not apply to --task {args.task}")
        kwargs[key] = value
    return kwargs


def _select_backends(requested: list[str] | None) -> list[str]:
    if requested is not None:
        return requested
    installed = available_backends()
    for name in BACKENDS:
        if name not in installed:
            print(f"{PROG}: skipping backend {name!r}: its framework is not installed", file=sys.stderr)
    return installed


def _warn_on_stderr(message: Warning | str, *_: Any, **__: Any) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _warn_on_stderr
    try:
        args = make_parser().parse_args(argv)
        args.task = args.task or ("data" if args.data is not None else "linreg")
        if args.task == "data" and args.data is None:
            raise UsageError("--task data needs --data FILE")
        task = get_task(args.task)
        defaults = task.defaults.get(args.model or task.default_model, task.defaults[task.default_model])
        setup = {key: getattr(args, key) if getattr(args, key) is not None else defaults[key]
                 for key in ("lr", "epochs", "batch_size")}
        problem = task.make_problem(seed=args.seed, epochs=setup["epochs"], batch_size=setup["batch_size"],
                                    **_task_kwargs(args, task.make_problem))
        options = {"dtype": args.dtype, "optimizer": args.optimizer, "lr": setup["lr"], "momentum": args.momentum,
                   "weight_decay": args.weight_decay, "loss": args.loss, "huber_delta": args.huber_delta}
        names = _select_backends(args.backends)
        backends = []
        for name in names:
            try:
                backends += build_backends(problem, [name], options)
            except BackendUnavailable as err:
                if args.backends is not None:
                    raise UsageError(str(err)) from err
                print(f"{PROG}: skipping backend {name!r}: {err}", file=sys.stderr)
    except (UsageError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if not backends:
        print(f"{PROG}: error: no backend could run", file=sys.stderr)
        return 1
    results = [train(backend, problem, init=args.init, seed=args.seed) for backend in backends]
    header = {"task": problem.task, "settings": problem.settings,
              "options": {**options, "init": args.init}}
    sys.stdout.write(render(build_tables(problem, results), args.format, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
