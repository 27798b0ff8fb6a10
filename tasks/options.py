"""A task's own options, declared: each is a keyword of its `make_problem`, and the command line, the option
rules, the sweep's grid and the memory check's advice are built from these declarations (the defaults are
make_problem's own). Options several tasks share are declared here once; one task's own beside it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..layers import ACTIVATIONS, BATCHNORM_VARIANCES

Sizes = Literal["", "rows", "features", "both"]
MODELS = ("linear", "mlp")


@dataclass(frozen=True)
class TaskOption:
    """`--NAME` on the command line (underscores become dashes), `NAME=` to make_problem."""

    name: str
    help: str
    parse: Callable[[str], Any] | None = None  # the text of a value to the value; None: a flag
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    negatable: bool = False  # a flag with a --no- form (an unset flag leaves the task's own default)
    sweepable: bool = False  # a sweep may give it as a comma list: one value per point
    sizes: Sizes = ""  # what of the data it sets the size of, for the memory check's advice

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def add_to(self, group: Any, where: str) -> None:
        """Its argument, in `group`; `where` names the tasks that take it, for the help."""
        text = f"{self.help} {where}"
        if self.parse is None:
            group.add_argument(self.flag, action=argparse.BooleanOptionalAction if self.negatable else "store_true",
                               default=None, help=text)
        else:
            group.add_argument(self.flag, type=self.parse, choices=self.choices, metavar=self.metavar, help=text)


def floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 2,-3.4; received: {text!r}") from None


def sizes(text: str) -> list[int]:
    message = f"expected comma-separated positive integers such as 32,32; received: {text!r}"
    try:
        found = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if min(found) < 1:
        raise argparse.ArgumentTypeError(message)
    return found


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a fraction from 0 (no validation rows) up to but not including "
                                         f"1; received: {text!r}")
    return value


def positions(text: str) -> list[int]:
    parts = text.split(",")
    if not all(part.strip().isdecimal() for part in parts):
        raise argparse.ArgumentTypeError(f"expected row positions, 0 the first, such as 6,10; received: {text!r}")
    return [int(part) for part in parts]


N_SAMPLES = TaskOption("n_samples", "training plus validation rows", int, sweepable=True, sizes="rows")
NOISE = TaskOption("noise", "standard deviation of the label noise", float, sweepable=True)
HIDDEN = TaskOption("hidden", "hidden layer sizes, e.g. 13 or 32,32 (an MLP's)", sizes)
ACTIVATION = TaskOption("activation", "the hidden layers' activation (an MLP's)", str, choices=ACTIVATIONS)
BATCHNORM = TaskOption("batchnorm", "a BatchNorm (momentum 0.9, eps 1e-5) before each hidden activation, its "
                                    "running variance kept biased (Keras, Flax, Gluon) or unbiased (torch's "
                                    "nn.BatchNorm1d): frameworks of the other kind refuse it", str,
                       choices=BATCHNORM_VARIANCES)
LAYERS = TaskOption("layers", "the model as text, e.g. 'conv2d(8, 3, padding=same), relu, maxpool(2), flatten, "
                              "linear(10)': each layer gives its output size, never its input (see the README's "
                              "\"Models as text\")", str, metavar="SPEC")
MODEL = TaskOption("model", "the model trained", str, choices=MODELS)
DATA = TaskOption("data", "a CSV (with a header line or without) or an .npz with X and y (the cnn task: X of "
                          "images (n, channels, height, width); sequence: X of sequences (n, steps, features); "
                          "tokens: X of token ids (n, steps))", str, sizes="both")
TARGET = TaskOption("target", "the CSV column to predict: its name, or its position (1 the first, -1 the last; "
                              "default the last)", str, metavar="COLUMN")
HEADER = TaskOption("header", "whether the CSV's first line names the columns (default: when it is not all "
                              "numbers)", negatable=True)
STANDARDIZE = TaskOption("standardize", "scale each feature by the training split's mean and standard deviation "
                                        "(reported)")

# Every task's: what the tutorials' own experiments need (hold nothing out, batches in order, a given start,
# no bias). make_problem takes each with the same default, and assemble() applies them.
VAL_FRACTION = TaskOption("val_fraction", "the share of the rows held out for validation (0: train on every row, "
                                          "no validation)", fraction, metavar="FRACTION", sweepable=True)
VAL_ROWS = TaskOption("val_rows", "hold out exactly these rows, by position in the data (0 the first), e.g. 6,10, "
                                  "instead of a seeded --val-fraction", positions, metavar="ROWS")
SHUFFLE = TaskOption("shuffle", "a new order of the training rows each epoch (--no-shuffle: the rows in their "
                                "order, the same every epoch)", negatable=True)
BIAS = TaskOption("bias", "a bias in every linear layer (--no-bias: weights only, each framework's layer built "
                          "without one)", negatable=True)
INIT_FROM = TaskOption("init_from", "the starting parameters, by canonical name (0.weight (out, in), 0.bias, "
                                    "...): an .npz of arrays, or a JSON object of nested lists", str, metavar="FILE")
COMMON = (VAL_FRACTION, VAL_ROWS, SHUFFLE, BIAS, INIT_FROM)
