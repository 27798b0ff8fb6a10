"""What a task hands to every backend: data, truth, initial parameters and batch order, all NumPy."""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

import numpy as np

from ..backends.batches import EpochBatches, shuffled_epochs
from ..backends.losses import CLASSIFICATION_LOSSES, REGRESSION_LOSSES
from ..layers import (
    DTYPES,
    Input,
    Layer,
    Linear,
    ModelSpec,
    input_shape,
    make_spec,
    mlp_spec,
    output_shape,
    param_shapes,
    with_mask_seed,
)
from ..layers.text import parse_layers
from .initial import load_initial
from .options import MODELS, TaskOption

Params = dict[str, np.ndarray]


@dataclass
class Problem:
    """One task instance. Rows of X_train are what `epoch_batches` index into."""

    task: str
    spec: ModelSpec
    X_train: np.ndarray  # (n_train, in)
    y_train: np.ndarray  # (n_train, out)
    X_val: np.ndarray
    y_val: np.ndarray
    initial_params: Params
    epoch_batches: EpochBatches  # [epoch][step] -> row indices into X_train
    truth: Params | None  # true parameters in the canonical layout, when the task has them
    X_grid: np.ndarray | None = None  # held-out inputs where the true function is known
    f_grid: np.ndarray | None = None  # the noise-free true function there, (n_grid, out)
    shuffle: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    classes: list[str] | None = None  # a classification's class names: y holds their indices, as (n, 1) floats
    # For a model with no exact optimum: the inputs of a linear model solved exactly as its baseline row (an
    # AR(p) model of a sequence's window: the window, flattened), and that row's name
    reference_features: Callable[[np.ndarray], np.ndarray] | None = None
    reference_name: str = ""

    def __post_init__(self) -> None:
        """A model whose layers need several rows per training batch (batch statistics) gets them in every batch,
        the last of each epoch too: one row is refused as the problem is made, from the command line and from
        Python alike, not found by one framework halfway through."""
        size = getattr(self.epoch_batches, "batch_size", None)  # a hand-made list of batches says nothing
        if size is None or not len(self.spec) or not len(self.X_train):
            return
        needs = max(self.spec, key=lambda layer: layer.smallest_batch)
        smallest = len(self.X_train) % size or size  # the last batch's rows: never more than the others'
        if smallest < needs.smallest_batch:
            raise ValueError(f"{needs.describe()} needs at least {needs.smallest_batch} rows in every training batch; "
                             f"with {len(self.X_train)} training rows and batches of {size} the last batch of each "
                             f"epoch has {smallest}: choose another batch size")



@dataclass(frozen=True)
class Task:
    name: str
    description: str
    make_problem: Callable[..., Problem]
    # per model ("linear", "mlp"): lr, epochs, batch_size (None: full), and optionally weight_decay
    defaults: dict[str, dict[str, Any]]
    default_model: str
    # (rows, input features) for make_problem's keyword arguments, without making anything: for the
    # memory check that comes before the data
    data_shape: Callable[..., tuple[int, int]]
    losses: tuple[str, ...] = REGRESSION_LOSSES  # the losses its labels suit; the first is the default
    options: tuple[TaskOption, ...] = ()  # its own options: keywords of make_problem a user may give
    # the model for make_problem's keyword arguments, without reading data (None, or a spec_for that gives None:
    # the MLP of --hidden): for the memory check that comes before the data
    spec_for: Callable[..., ModelSpec | None] | None = None

    def __post_init__(self) -> None:
        keywords = inspect.signature(self.make_problem).parameters
        undeclared = [option.name for option in self.options if option.name not in keywords]
        if undeclared:  # the task's author's mistake, found when the task is imported
            raise TypeError(f"task {self.name!r} declares options its make_problem does not take: "
                            f"{', '.join(undeclared)}")

    def takes(self, option: str) -> bool:
        """Whether `option` is one of its declared options."""
        return any(declared.name == option for declared in self.options)

    @property
    def classifies(self) -> bool:
        """Whether its labels are classes (its losses take class indices)."""
        return self.losses[0] in CLASSIFICATION_LOSSES


def given_or_default(make_problem: Callable[..., Problem], given: dict[str, Any], key: str) -> Any:
    """`key` as make_problem would see it: given, or its default."""
    return given[key] if key in given else inspect.signature(make_problem).parameters[key].default


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; received: {model!r}")
    return model


def check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(hidden)
    if not sizes or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes):
        raise ValueError(f"hidden must be one or more positive integers; received: {list(sizes)!r}")
    return sizes


def check_split(n_samples: int, val_fraction: float) -> int:
    """Number of validation rows; the training part must be non-empty, and so must the validation part unless
    val_fraction is 0 (every row trains, as the tutorials that hold nothing out do)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must lie from 0 up to but not including 1; received: {val_fraction!r}")
    n_val = round(n_samples * val_fraction)
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1; received: {n_samples!r}")
    if val_fraction and (n_val < 1 or n_samples - n_val < 1):
        raise ValueError(
            f"n_samples must leave at least one training and one validation row with "
            f"val_fraction={val_fraction}; received: {n_samples!r}"
        )
    return n_val


def check_rows(n_samples: int, val_rows: Sequence[int]) -> np.ndarray:
    """The positions of the rows to hold out: each within the data, each once, and a row left to train on.
    Checked as Python integers, so that a position past int64 is refused as out of range, not overflowed."""
    rows = list(val_rows)
    if not rows or not all(isinstance(row, Integral) and 0 <= row < n_samples for row in rows):
        raise ValueError(f"val_rows must be positions of the data's {n_samples} rows, 0 to {n_samples - 1}; "
                         f"received: {rows!r}")
    if len(set(rows)) < len(rows):
        raise ValueError(f"val_rows must name each row once; received: {rows!r}")
    if len(rows) >= n_samples:
        raise ValueError(f"val_rows must leave at least one of the {n_samples} rows to train on; received: {rows!r}")
    return np.array(rows, dtype=np.int64)


def split(rng: np.random.Generator, X: np.ndarray, y: np.ndarray, n_val: int,
          iid: bool = False) -> tuple[np.ndarray, ...]:
    """A hold-out split: X_train, y_train, X_val, y_val. Rows drawn i.i.d. are split where they stand
    (views, no copy: the first n_val rows are as random as any); other data by a random permutation. Nothing
    held out: every row trains, in its order."""
    if iid or not n_val:
        return X[n_val:], y[n_val:], X[:n_val], y[:n_val]
    order = rng.permutation(len(X))
    train, val = order[n_val:], order[:n_val]
    return X[train], y[train], X[val], y[val]


DRAW_ROWS_BYTES = 2**20  # float64 values drawn at once before storing them in the data's dtype


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; received: {dtype!r}")
    return dtype


def check_range(what: str, values: np.ndarray, dtype: str) -> None:
    """Values whose square overflows `dtype` make every loss infinite: refuse them before training."""
    limit = math.sqrt(float(np.finfo(dtype).max))
    largest = max(float(np.max(values)), -float(np.min(values))) if values.size else 0.0
    if not largest <= limit:  # NaN included: inf − inf while the data were made
        advice = "float64 or smaller values" if dtype == "float32" else "smaller values"
        size = f"{largest:.3g}" if math.isfinite(largest) else "values beyond float64's range"
        raise ValueError(f"{what} reach {size}, beyond what {dtype} can square ({limit:.3g}): "
                         f"every loss would overflow; use {advice}")


def normal_init(rng: np.random.Generator, spec: ModelSpec, *, sigma: float) -> Params:
    """Weights ~ N(0, sigma²), biases zero: the Gluon reference's init.Normal(sigma)."""
    return {
        name: rng.normal(0.0, sigma, size=shape) if name.endswith("weight") else np.zeros(shape)
        for name, shape in param_shapes(spec).items()
    }


def uniform_init(rng: np.random.Generator, spec: ModelSpec) -> Params:
    """U(±1/√fan_in) for a Linear layer's weights and biases: the distribution of PyTorch's nn.Linear default;
    any other layer's parameters as its NumPy initialiser sets them (a BatchNorm: γ = 1, β = 0)."""
    found: Params = {}
    for index, layer in enumerate(spec):
        shapes = {name: shape for name, shape in layer.params().items()}
        if isinstance(layer, Linear):
            found.update({f"{index}.{name}": rng.uniform(-1.0, 1.0, size=shape) / np.sqrt(layer.in_features)
                          for name, shape in shapes.items()})
        elif shapes:
            own = {name: np.zeros(shape) for name, shape in shapes.items()}
            layer.numpy_init(rng, own)
            found.update({f"{index}.{name}": value for name, value in own.items()})
    return found


def check_batching(n_train: int, batch_size: int | None, epochs: int) -> int:
    """The batch size to use: None means the whole training set; a larger one is clipped with a warning."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer; received: {epochs!r}")
    if batch_size is None:
        return n_train
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; received: {batch_size!r}")
    if batch_size > n_train:
        warnings.warn(f"batch_size={batch_size} exceeds the {n_train} training rows; using {n_train}", stacklevel=3)
    return min(batch_size, n_train)


def model_spec(model: str, n_in: int, n_out: int, hidden: Sequence[int], activation: str,
               batchnorm: str | None = None, bias: bool = True) -> ModelSpec:
    """`linear`: one Linear layer; `mlp`: Linear–activation–…–Linear with the hidden sizes (and a BatchNorm
    before each activation, with `batchnorm`); every Linear layer with a bias or, without `bias`, none."""
    if check_model(model) == "linear":
        return mlp_spec(n_in, (), n_out, activation, bias=bias)
    return mlp_spec(n_in, check_hidden(hidden), n_out, activation, batchnorm, bias=bias)


def layers_spec(layers: str | Sequence[Layer], shape: tuple[int, ...], outputs: int | None = None,
                classes: bool = False) -> ModelSpec:
    """The model of `layers` (text, parsed for examples of `shape`, or layer objects, an Input put first when
    they start without one) whose last layer gives `outputs` values (one logit per class with `classes`)."""
    if isinstance(layers, str):
        found = parse_layers(layers, shape)
    elif isinstance(layers, list | tuple):
        found = list(layers)
        if not found or not isinstance(found[0], Input):
            found.insert(0, Input(tuple(shape)))
    else:
        raise ValueError(f"layers must be a text such as 'linear(32), relu, linear(1)' or a list of layers "
                         f"(backend_compare.layers); received: {layers!r}")
    spec = make_spec(found)
    if input_shape(spec) != tuple(shape):
        raise ValueError(f"the layers take examples of shape {input_shape(spec)}; the data's are {tuple(shape)}")
    out = output_shape(spec)
    if outputs is not None and out != (outputs,):
        wanted = f"the data have {outputs} classes" if classes else f"the target has {outputs} column(s)"
        ending = f"flatten and linear({outputs})" if len(out) > 1 else f"linear({outputs})"
        raise ValueError(f"the last layer ({spec[-1].describe()}) gives outputs of shape {out}; {wanted}: end "
                         f"the layers with {ending}")
    return spec


def check_layers_alone(layers: object, batchnorm: str | None, bias: bool) -> None:
    """`layers` writes the whole model: an MLP's own batchnorm and bias do not go with it."""
    if layers is not None and (batchnorm is not None or not bias):
        raise ValueError("batchnorm and bias apply to an MLP of hidden sizes; with layers, write batchnorm among "
                         "them and bias=False in a linear layer")


def layers_setting(layers: str | Sequence[Layer], spec: ModelSpec) -> str:
    """The model as the settings record it: the text given, or the layers' descriptions."""
    return layers if isinstance(layers, str) else ", ".join(layer.describe() for layer in spec[1:])


def assemble(
    task: str,
    rng: np.random.Generator,
    X: np.ndarray,
    y: np.ndarray,
    *,
    spec: ModelSpec,
    init: Callable[[np.random.Generator, ModelSpec], Params],
    val_fraction: float,
    epochs: int,
    batch_size: int | None,
    shuffle: bool = True,
    val_rows: Sequence[int] | None = None,
    init_from: str | None = None,
    truth: Params | None = None,
    X_grid: np.ndarray | None = None,
    f_grid: np.ndarray | None = None,
    iid: bool = False,
    splitter: Callable[[np.random.Generator, np.ndarray, np.ndarray, int], tuple[np.ndarray, ...]] | None = None,
    settings: dict[str, Any],
) -> Problem:
    """Split (by `splitter` when given and something is held out), initial parameters, batch order, then the seed
    of dropout masks (for a model with dropout layers given none), drawn from `rng` in that order. A full batch
    is not shuffled: its gradient does not depend on the order, and the rows then need no copying. `val_rows`: the
    rows held out, by position, instead of a drawn split (the
    others train in their order). `init_from`: a file of starting parameters that replace those drawn (drawn
    still, so the batch order is the same with the file as without it)."""
    if val_rows is not None:
        held = check_rows(len(X), val_rows)
        kept = np.setdiff1d(np.arange(len(X)), held)  # sorted: the training rows in their order
        X_train, y_train, X_val, y_val = X[kept], y[kept], X[held], y[held]
        val_fraction = len(held) / len(X)
    else:
        n_val = check_split(len(X), val_fraction)
        X_train, y_train, X_val, y_val = (splitter(rng, X, y, n_val) if splitter is not None and n_val
                                          else split(rng, X, y, n_val, iid))
    batch_size = check_batching(len(X_train), batch_size, epochs)
    shuffle = shuffle and batch_size < len(X_train)
    initial_params = init(rng, spec)
    if init_from is not None:
        initial_params = load_initial(init_from, param_shapes(spec))
    if truth is not None:  # a model without bias has no true bias to be compared with
        truth = {name: value for name, value in truth.items() if name in initial_params}
    epoch_batches = shuffled_epochs(rng, len(X_train), batch_size, epochs, shuffle)  # leaves rng as it was
    if any(layer.takes_mask for layer in spec):  # dropout masks follow the run's seed, drawn last: nothing moves
        spec = with_mask_seed(spec, int(rng.integers(2**31)))  # hashed into a stream of its own (SeedSequence)
    return Problem(
        task=task, spec=spec, X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val,
        initial_params=initial_params,
        epoch_batches=epoch_batches,
        truth=truth, X_grid=X_grid, f_grid=f_grid, shuffle=shuffle,
        settings={**settings, "epochs": epochs, "batch_size": batch_size, "val_fraction": val_fraction,
                  # the tutorials' options, shown only when they differ from the usual
                  **({} if shuffle or batch_size == len(X_train) else {"shuffle": False}),
                  **({"val_rows": list(map(int, val_rows))} if val_rows is not None else {}),
                  **({"init_from": init_from} if init_from is not None else {}),
                  **({"bias": False} if any(isinstance(layer, Linear) and not layer.bias for layer in spec) else {})},
    )
