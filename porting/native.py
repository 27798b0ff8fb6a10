"""A user's model as the port check sees it: its layers, read into the suite's canonical layer specs in the order
its forward calls them, each with where its parameters live; and the interface every framework's reader
(torch_model.py, mxnet_model.py, jax_model.py, tensorflow_model.py) gives: capture a forward layer by layer, read
and write parameters and state, train a few steps with the framework's own optimiser."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..layers import Layer, Link

Arrays = dict[str, np.ndarray]
LOSSES = ("mse", "cross-entropy")
TWO_PASS = "two-pass, E[(x − E[x])²]"  # how a normalisation layer computes a batch's variance
OPTIMIZERS = ("sgd", "momentum", "adam")


@dataclass
class Found:
    """One layer of a user's model: its path there, its canonical spec and where its parameters and state live."""

    path: str
    layer: Layer | None  # None for a layer without parameters the suite has no spec of (its settings say what)
    module: Any  # the framework's own layer object
    native_type: str  # e.g. torch.nn.Conv2d
    kind: str = ""  # the canonical layer kind (linear, conv2d, activation, maxpool, flatten, dropout …)
    settings: Mapping[str, Any] = field(default_factory=dict)  # what it computes, in canonical terms
    links: Mapping[str, Link] = field(default_factory=dict)
    state_links: Mapping[str, Link] = field(default_factory=dict)
    # a Linear layer after a channels-last Flatten: its input columns in the canonical (channels-first) order are
    # these native columns (Keras's and Flax's Flatten of (H, W, C) against torch's and Gluon's of (C, H, W))
    columns: np.ndarray | None = None
    fused: str = ""  # an activation the framework's layer applies after itself (Keras's Dense(activation=…))
    initialiser: str = ""  # what the framework's layer draws its weights from, where it says
    flattens: bool = False  # a Linear layer that flattens an input of more axes itself (Gluon's Dense)
    time_major: bool = False  # a recurrent layer that takes and gives (steps, batch, features)

    def __post_init__(self) -> None:
        if self.layer is not None:
            self.kind = self.kind or self.layer.kind
            self.settings = {**layer_settings(self.layer), **self.settings}

    @property
    def has_params(self) -> bool:
        return self.layer is not None and bool(self.layer.params() or self.layer.state())

    def describe(self) -> str:
        if self.layer is not None:
            text = self.layer.describe()
        else:
            values = [str(value) for key, value in self.settings.items() if key != "function"]
            text = str(self.settings.get("function", self.kind)) + (f"({', '.join(values)})" if values else "")
        return f"{text} + {self.fused}" if self.fused else text


STRUCTURE = ("sequences",)  # options that say what a layer returns, not how it computes


def layer_settings(layer: Layer) -> dict[str, Any]:
    """A canonical layer's options by name (what a convention check compares)."""
    from dataclasses import fields

    return {item.name: getattr(layer, item.name) for item in fields(layer)  # type: ignore[arg-type]
            if item.name not in STRUCTURE}


RECURRENT = ("rnn", "gru", "lstm")
CELL_FUNCTIONS = {"activation": "tanh", "gate activation": "sigmoid"}  # torch's and Gluon's, fixed


@dataclass(frozen=True)
class Stacked(Link):
    """A canonical array kept by a framework as equal blocks of its first axis in separate arrays (Flax's LSTMCell:
    one Linear per gate): `native` names them, separated by "|", and the framework's reader stacks them."""

    @property
    def parts(self) -> list[str]:
        return self.native.split("|")

    def read(self, whole: np.ndarray) -> np.ndarray:
        return np.concatenate([self.canonical_array(part) for part in whole])

    def written(self, whole: np.ndarray, canonical: np.ndarray) -> np.ndarray:
        return np.stack([self.native_array(part) for part in np.split(canonical, len(self.parts))])


@dataclass
class Capture:
    """What one forward call of a layer saw: its input and output, in the canonical layout."""

    inputs: np.ndarray
    output: np.ndarray


@dataclass(frozen=True)
class Training:
    """How both models train in the check: the loss, each framework's own optimiser of this name, its settings."""

    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    steps: int = 3
    batch_size: int = 0  # 0: every row in each step


@dataclass
class Trajectory:
    """A few training steps: each step's loss, and the parameters (canonical names) after it."""

    losses: list[float]
    params: list[Arrays]
    grads: Arrays  # the first step's gradients


def to_canonical(array: np.ndarray, channels_last: bool) -> np.ndarray:
    """A channels-last batch of images (N, H, W, C) as channels-first (N, C, H, W); anything else as it is."""
    array = np.asarray(array)
    return array.transpose(0, 3, 1, 2) if channels_last and array.ndim == 4 else array


def to_native(array: np.ndarray, channels_last: bool) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 2, 3, 1)) if channels_last and array.ndim == 4 else array


def hwc_columns(width: int, channels: int) -> np.ndarray:
    """For a flattened channels-last image of `width` values and `channels` channels: the native column of each
    canonical (channels-first) column. It needs no height and width: (H·W, C) → (C, H·W) keeps the positions'
    order."""
    return np.arange(width).reshape(width // channels, channels).T.reshape(-1)


class NativeModel(ABC):
    """A user's model of one framework, read once (`layers`) from a forward on example inputs."""

    framework: ClassVar[str]  # the suite's backend name: torch, mxnet, jax, tensorflow
    title: ClassVar[str]  # the framework as a user names it
    # how its optimiser applies weight decay, and where Adam adds ε (each with its default ε), for the conventions
    weight_decay: ClassVar[str] = "coupled: wd·w added to the gradient"
    adam_eps: ClassVar[str] = "1e-08, added to √v̂"

    def optimizer_settings(self, training: Training) -> dict[str, str]:
        """The optimiser's conventions that matter for `training`."""
        found = {}
        if training.weight_decay and training.optimizer != "sgd":
            found["weight decay"] = self.weight_decay
        if training.optimizer == "adam":
            found["adam ε"] = self.adam_eps
        return found

    def __init__(self, model: Any, side: str) -> None:
        self.model, self.side = model, side
        self.channels_last = False
        self.layers: list[Found] = []

    @property
    def model_class(self) -> str:
        """The user's model's class name."""
        return type(self.model).__name__

    @classmethod
    @abstractmethod
    def accepts(cls, model: Any) -> bool:
        """Whether `model` is this framework's model (checked without importing a framework not yet loaded)."""

    # ---- what each framework's reader gives ----

    @abstractmethod
    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        """Every layer to watch in a forward (path, the framework's layer, what it reads as: None for one without
        parameters it does not know); a ValueError names a layer with parameters it cannot read."""

    @abstractmethod
    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        """The output for X (the framework's layout) in training or evaluation mode, and for each of `modules` its
        first call's (position in `modules`, input, output) as NumPy, in the order they were called."""

    @abstractmethod
    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        """Every parameter and state array `module` holds, with its name: what a check must account for."""

    def _check_covered(self) -> None:
        """A ValueError naming parameters outside every layer read: a check that ignored them would carry, compare
        and restore the model without them."""
        covered = {id(variable) for item in self.layers if item.layer is not None
                   for _, variable in self._variables(item.module)}
        left = [name for name, variable in self._variables(self.model) if id(variable) not in covered]
        if left:
            shown = ", ".join(left[:4]) + (", …" if len(left) > 4 else "")
            raise ValueError(f"model {self.side}: it holds parameters outside the layers check_port reads ({shown}): "
                             "a parameter of the model's own, or of a layer its forward does not call")

    def _channels_last(self, found: list[Found]) -> bool:
        """Whether the model takes images channels last (N, H, W, C)."""
        return False

    @abstractmethod
    def dtype(self) -> str:
        """The dtype its parameters are held in."""

    @abstractmethod
    def cast(self, dtype: str) -> None:
        """Hold every parameter and state in `dtype`; a ValueError where the framework's model cannot be cast."""

    @abstractmethod
    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        """The native arrays of `found` at `links`, as NumPy, in the framework's layout."""

    @abstractmethod
    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        """Write native-layout `values` into the arrays at `links`."""

    @abstractmethod
    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        """`training.steps` steps of the framework's own optimiser on (X, y) (canonical layout), batches in order."""

    def _set_rate(self, found: Found, rate: float) -> None:
        """Set a dropout layer's rate (each reader knows where its framework keeps it)."""
        raise NotImplementedError

    @contextmanager
    def without_dropout(self) -> Iterator[list[str]]:
        """Every dropout layer at rate 0 meanwhile (each framework draws its own masks, so a training-mode
        comparison with dropout on differs by design); yields their paths."""
        held = [(item, item.settings["rate"]) for item in self.layers if item.kind == "dropout"
                and item.settings.get("rate")]
        try:
            for item, _ in held:
                self._set_rate(item, 0.0)
            yield [item.path for item, _ in held]
        finally:
            for item, rate in held:
                self._set_rate(item, rate)

    # ---- reading and running, the same for every framework ----

    def read(self, X: np.ndarray) -> None:
        """Find the model's layers (self.layers, in the order its forward calls them) and its layout, from one
        forward on X (canonical layout)."""
        with self.failures(X):
            self._prepare(X)
        watched = self._watched()
        self.channels_last = self._channels_last([item for _, _, item in watched if item is not None])
        with self.failures(X):
            _, calls = self._run(self.native_input(X), False, [module for _, module, _ in watched])
        self.layers = [item for index, _, _ in calls if (item := watched[index][2]) is not None]
        self._check_covered()
        for index, inputs, _ in calls:
            item = watched[index][2]
            if item is not None and item.flattens and np.ndim(inputs) <= 2:
                item.flattens = False  # it was given rows: nothing to flatten
            if item is not None and item.kind == "conv2d" and item.layer is not None and np.ndim(inputs) == 4:
                # the padding as numbers for this input: "same" and (1, 1) are one convention where they pad alike
                shape = to_canonical(np.empty((1, *np.shape(inputs)[1:]), np.int8), self.channels_last).shape[1:]
                item.settings = {**item.settings, "padding": item.layer.pads(shape)}  # type: ignore[attr-defined]
        if self.channels_last:
            # The first Linear layer after channels-last images takes them flattened as (H, W, C); a pooling
            # function between (Flax's) keeps the channels, the last axis of the last image a layer gave.
            channels: int | None = None
            for index, inputs, output in calls:
                item = watched[index][2]
                if item is not None and item.kind in ("linear", "flatten") and channels is not None:
                    width = int(np.prod(np.shape(inputs)[1:]))
                    if (item.kind == "flatten" and np.ndim(inputs) == 4) or (
                            item.kind == "linear" and np.ndim(inputs) == 2 and width % channels == 0):
                        item.columns = hwc_columns(width, channels)
                    if item.kind == "linear":
                        channels = None
                if np.ndim(output) == 4:
                    channels = int(np.shape(output)[-1])

    def _prepare(self, X: np.ndarray) -> None:  # noqa: B027
        """Give a model whose parameters take their shapes from its first input (Gluon's deferred initialisation,
        an unbuilt Keras model) that input (canonical layout)."""

    @contextmanager
    def failures(self, X: np.ndarray) -> Iterator[None]:
        """The user's model failing on the user's inputs (in a forward or a training step): its own error, as one
        line naming the side."""
        try:
            yield
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except ValueError as err:
            if str(err).startswith(f"model {self.side}:"):
                raise
            raise self._failed(X, err) from err
        except Exception as err:
            raise self._failed(X, err) from err

    def _failed(self, X: np.ndarray, err: BaseException) -> ValueError:
        from ..backends.errors import error_line

        return ValueError(f"model {self.side}: it failed on inputs of shape {tuple(np.shape(X))} (canonical layout): "
                          f"{error_line(err)}")

    def native_targets(self, y: np.ndarray, training: Training) -> np.ndarray:
        """Targets in the framework's layout: images of targets (an autoencoder's, mse) channels last where the
        model is; class indices as they are."""
        return to_native(y, self.channels_last) if training.loss == "mse" else y

    def native_input(self, X: np.ndarray) -> np.ndarray:
        return to_native(X, self.channels_last)

    def capture(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, dict[int, Capture]]:
        """The model's output for X and, by position in self.layers, what each layer saw (first call), all in the
        canonical layout; a forward in training mode leaves parameters and state as they were."""
        saved = self.state()
        try:
            output, calls = self._run(self.native_input(X), train, [item.module for item in self.layers])
        finally:
            self.set_state(saved)
        return to_canonical(output, self.channels_last), {
            index: Capture(self._canonical_input(self.layers[index], inputs),
                           self._canonical_output(self.layers[index], out)) for index, inputs, out in calls}

    def _canonical_input(self, found: Found, array: np.ndarray) -> np.ndarray:
        array = to_canonical(array, self.channels_last)
        if found.time_major and array.ndim == 3:
            array = array.transpose(1, 0, 2)
        if found.flattens and array.ndim > 2:
            array = array.reshape(len(array), -1)  # Gluon's Dense flattens (N, …) itself
        if found.kind == "linear" and found.columns is not None and array.ndim == 2:
            array = array[:, found.columns]
        return array

    def _canonical_output(self, found: Found, array: np.ndarray) -> np.ndarray:
        array = to_canonical(array, self.channels_last)
        if found.time_major and array.ndim == 3:
            array = array.transpose(1, 0, 2)
        return array[:, found.columns] if found.kind == "flatten" and found.columns is not None else array

    # ---- parameters, canonical ----

    def params(self) -> Arrays:
        return self._read_all(state=False)

    def state(self) -> Arrays:
        return self._read_all(state=True)

    def set_params(self, values: Mapping[str, np.ndarray]) -> None:
        self._write_all(values, state=False)

    def set_state(self, values: Mapping[str, np.ndarray]) -> None:
        self._write_all(values, state=True)

    def _read_all(self, state: bool) -> Arrays:
        found: Arrays = {}
        for item in self.layers:
            links = item.state_links if state else item.links
            if not links:
                continue
            native = self._arrays(item, links)
            for name, link in links.items():
                found[f"{item.path}.{name}"] = np.array(canonical(item, name, link, native[name]), copy=True)
        return found

    def _write_all(self, values: Mapping[str, np.ndarray], state: bool) -> None:
        for item in self.layers:
            links = item.state_links if state else item.links
            for name, link in links.items():
                if f"{item.path}.{name}" not in values:
                    continue
                # one array at a time: two canonical arrays may be parts of one framework array (Keras's GRU bias)
                whole = self._arrays(item, {name: link})[name]
                value = np.asarray(values[f"{item.path}.{name}"])
                if item.columns is not None and name == "weight":
                    native_order = np.empty_like(value)
                    native_order[:, item.columns] = value
                    value = native_order
                written = np.ascontiguousarray(link.written(whole, value)).astype(whole.dtype)
                self._assign(item, {name: link}, {name: written})


def first(output: Any) -> Any:
    """A model's or layer's output, or the first of the outputs it gives (a recurrent layer's sequence before its
    state): what every reader compares and trains on."""
    return output[0] if isinstance(output, tuple | list) else output


def canonical(found: Found, name: str, link: Link, native: np.ndarray) -> np.ndarray:
    """The canonical array `name` of `found` from the framework's whole array (a gradient's, too)."""
    value = link.read(native)
    return value[:, found.columns] if found.columns is not None and name == "weight" else value


def batches(rows: int, training: Training) -> list[tuple[int, int]]:
    """Each step's rows, in order, starting again at the first row when the inputs run out."""
    size = min(training.batch_size or rows, rows)
    per_pass = max(1, rows // size)
    return [((step % per_pass) * size, (step % per_pass) * size + size) for step in range(training.steps)]


def not_readable(side: str, path: str, native_type: str, readable: Sequence[str]) -> ValueError:
    return ValueError(f"model {side}: layer {path!r} ({native_type}) holds parameters check_port cannot read; "
                      f"it reads: {', '.join(readable)}")


