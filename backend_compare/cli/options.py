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
    python compare.py port gluon_net.py:make torch_net.py:make --inputs x.npz --check   (your own model's port)
    python compare.py --data people.csv --target score --standardize
    python compare.py --task softmax --dataset digits               (classification: accuracy, per class, optimum)
    python compare.py --task classifier --dataset wine --optimizer adam
    python compare.py --task classifier --data animals.csv --target species --hidden 16
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
from collections.abc import Callable
from typing import Any, NoReturn

from ..backends import BACKENDS, LOSSES, MODES, OPTIMIZERS, RowName
from ..backends.devices import DEVICES
from ..backends.precision import DTYPES, PRECISIONS
from ..comparison.executors import RUN_EXECUTORS
from ..comparison.report import FORMATS
from ..comparison.run import INIT_MODES
from ..optimizers import clipping, schedules
from ..tasks import TASKS, task_options
from .console import UsageError
from .settings import RunSettings


class Parser(argparse.ArgumentParser):
    """argparse, its errors raised as UsageError (one line, exit 2) instead of printed with the usage; no
    abbreviations (`--ou why` would be taken for --out and a typo would pass unnoticed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_settings(argv: list[str], prog: str, description: str | None = None, **defaults: Any) -> RunSettings:
    """A run's command line as settings (not yet checked: RunSettings.checked); `defaults` replace the
    parser's (explain runs inline unless told otherwise), `description` the run's --help text."""
    parser = make_parser(prog, description)
    parser.set_defaults(**defaults)
    return RunSettings.from_values(vars(parser.parse_args(argv)))


def parse_value(parser: argparse.ArgumentParser, option: str, text: str) -> Any:
    """One option's value as `parser` reads it on a command line: its type, choices and error messages."""
    return getattr(parser.parse_args([f"{option}={text}"]), option.lstrip("-").replace("-", "_"))


MAX_SEED = 2**31 - 1  # the largest seed every framework's generator takes (MXNet's is a C int)
MAX_TIMEOUT = 1_000_000  # seconds (11.6 days): beyond it the waits' clocks overflow long before it matters


def _seeds(text: str) -> list[int]:
    parts = text.split(",")
    if not all(part.strip().isdecimal() for part in parts):
        raise argparse.ArgumentTypeError(f"expected non-negative integers such as 0 or 0,1,2; received: {text!r}")
    seeds = [int(part) for part in parts]
    if max(seeds) > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected seeds up to {MAX_SEED} (what every framework's generator "
                                         f"takes); received: {text!r}")
    twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if twice:  # one seed counted twice would make a spread of zero and an interval of no width
        raise argparse.ArgumentTypeError(f"expected distinct seeds; received: {text!r} (seed "
                                         f"{', '.join(map(str, twice))} more than once)")
    return seeds


def _checked_by(parse: Callable[[str, str], object], name: str) -> Callable[[str], str]:
    """An option's text, as given, once `parse` (schedules.parse, clipping.parse) has found it well formed."""
    def read(text: str) -> str:
        try:
            parse(text, name)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"{name} ")) from None
        return text.strip()

    return read


def _weights(text: str) -> list[float]:
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        weights = []
    if not weights or not all(math.isfinite(weight) and weight > 0 for weight in weights):
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers > 0, one per class, such as 1,2,5; "
                                         f"received: {text!r}")
    return weights


def _modes(text: str) -> list[str]:
    modes = [mode.strip() for mode in text.split(",")]
    if not set(modes) <= set(MODES) or len(set(modes)) < len(modes):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(MODES)}, or several once each such as "
                                         f"eager,compiled; received: {text!r}")
    return modes


def _count(text: str) -> int:
    if not text.isdecimal() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received: {text!r}")
    return int(text)


def _threads(text: str) -> int:
    cores = os.cpu_count() or 1
    if not text.isdecimal() or not 1 <= int(text) <= cores:  # more than the cores: contention, never speed
        raise argparse.ArgumentTypeError(f"expected a number of threads from 1 to {cores} (this machine's cores); "
                                         f"received: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0 or value > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0 and at most {MAX_TIMEOUT:,}; "
                                         f"received: {text!r}")
    return value


def _interpreter(text: str) -> tuple[str, str]:
    label, equals, path = text.partition("=")
    if not equals or not label.isidentifier() or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH such as np2=/opt/np2/bin/python; received: {text!r}")
    return label, path


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


def _where(defaults: dict[str, object]) -> str:
    """The tasks that take an option, each with its default: "[linreg: 1000, mlp: 256]"; "[every task: 0.2]"
    when every task takes it alike (a flag's default goes without saying)."""
    def shown(value: object) -> str:
        if value is inspect.Parameter.empty:
            return ": required"
        if value is None or isinstance(value, bool):
            return ""
        return f": {','.join(map(str, value)) if isinstance(value, tuple | list) else value}"

    if len(defaults) == len(TASKS) and len({repr(value) for value in defaults.values()}) == 1:
        return f"[every task{shown(next(iter(defaults.values())))}]"
    return "[" + ", ".join(f"{task}{shown(value)}" for task, value in defaults.items()) + "]"


def make_parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    usual = RunSettings()  # the defaults are the settings'
    parser = Parser(prog=prog, description=description or (__doc__ or "").replace("python compare.py", prog),
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
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=usual.optimizer,
                        help="each framework's own, with torch.optim's formulas and constants (README: Optimisers); "
                             "adadelta's --lr defaults to 1, torch's")
    parser.add_argument("--momentum", type=float, help="for sgd, momentum and nesterov (default 0, 0.9 and 0.9)")
    parser.add_argument("--weight-decay", type=float,
                        help="L2 penalty added to the gradient (default 0; softmax: 1e-3, which gives its "
                             "separable data sets a finite optimum); with adamw decoupled, lr·wd·p off the weights "
                             "(default 0.01, torch's)")
    parser.add_argument("--schedule", type=_checked_by(schedules.parse, "schedule"), metavar="SCHEDULE",
                        help=f"the learning rate per update: {schedules.GRAMMAR}; counts are updates, cosine and "
                             "onecycle span the run (default constant)")
    parser.add_argument("--clip", type=_checked_by(clipping.parse, "clip"), metavar="CLIP",
                        help=f"clip the loss's gradient before the update: {clipping.GRAMMAR}")
    parser.add_argument("--loss", choices=LOSSES,
                        help="default mse; l1 = mean |ŷ − y|; cross-entropy (on logits, class indices as labels) for "
                             "softmax and classifier, the only loss they take")
    parser.add_argument("--huber-delta", type=float, help="for --loss huber (default 1)")
    parser.add_argument("--label-smoothing", type=float, metavar="EPSILON",
                        help="for --loss cross-entropy: the target (1 − ε)·one-hot + ε/K, torch's (default 0)")
    parser.add_argument("--class-weights", type=_weights, metavar="W1,W2,…",
                        help="for --loss cross-entropy: one weight per class; the loss is torch's weighted mean, "
                             "Σ w[y]·l / Σ w[y]")
    parser.add_argument("--dtype", choices=DTYPES, default=usual.dtype,
                        help="what the frameworks hold and compute in (default float32); bfloat16 and float16 "
                             "throughout, measured against a float64 shadow (README: Reduced precision)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="each framework's mixed precision: float32 parameters, the layers in bfloat16 or float16 "
                             "(torch.autocast, Keras dtype policies, Flax dtype/param_dtype), float16's loss scaled"),
    parser.add_argument("--device", choices=DEVICES, default=usual.device,
                        help="cpu (default); cuda: torch, JAX and TensorFlow on the GPU, which needs their CUDA builds "
                             "(pip install -e '.[gpu]'); auto: cuda where a backend can, else cpu")
    parser.add_argument("--deterministic", action="store_true", default=None,
                        help="ask every framework for its deterministic mode (torch.use_deterministic_algorithms, "
                             "TensorFlow's op determinism, XLA's and MXNet's deterministic GPU kernels)")
    parser.add_argument("--init", choices=INIT_MODES, default=usual.init,
                        help="shared: the task's initial parameters and batches for every backend; native: each "
                             "framework's own initialiser and data loader, seeded by --seed")
    parser.add_argument("--mode", type=_modes, default=usual.mode,
                        help="how each training step runs: eager (op by op), compiled (torch.compile, jax.jit, "
                             "tf.function, Gluon's hybridize) or usual (as each framework's tutorials do; the "
                             "default); eager,compiled runs every backend both ways")
    running = parser.add_argument_group("where it runs")
    running.add_argument("--executor", choices=RUN_EXECUTORS, default=usual.executor,
                         help="process: each backend in a worker process of its own (default); inline: all in "
                              "this process")
    running.add_argument("--jobs", type=_count, default=usual.jobs,
                         help="workers running at once (default: the number of cores)")
    running.add_argument("--python", action="append", type=_interpreter, metavar="LABEL=PATH", default=[],
                         help="another environment's Python, for NAME@LABEL in --backends (also read from "
                              "[tool.backend-compare.python] of ./pyproject.toml)")
    running.add_argument("--threads", type=_threads, metavar="N",
                         help="framework threads in each worker (default: the cores shared among the workers the "
                              "default --jobs runs at once, whatever --jobs says, so that they do not oversubscribe "
                              "the cores and a step is timed at the same thread count with --jobs 1)")
    running.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                         help="a job running longer is stopped and its row says so (process executor)")
    report = parser.add_argument_group("report")
    report.add_argument("--format", choices=FORMATS, default=usual.format)
    report.add_argument("--curves", nargs="?", const="summary", choices=("summary", "all"),
                        help="also print the training and validation loss along the steps: a few points per backend, "
                             "or every evaluated point with --curves all")
    report.add_argument("--plot", metavar="FILE", help="write the loss curves and parity over steps as a PNG")
    report.add_argument("--relative", action="store_true", default=None,
                        help="also show parameter errors against the exact optimum (linear models)")
    report.add_argument("--out", metavar="DIR", help="save results.json, tables (CSV, Markdown) and the plot")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    report.add_argument("--check", action="store_true", default=None,
                        help="exit 1 when a pair of backends differs beyond its tolerance (the dtype's, widened "
                             "only by the named allowances that concern the pair) and above the run's rounding "
                             "noise (numpy's float32 run against its float64 shadow): a gate for CI")
    tasks = parser.add_argument_group("the tasks' own options", "each applies to the tasks it names [task: default]")
    for option, defaults in task_options().values():
        option.add_to(tasks, _where(defaults))
    return parser
