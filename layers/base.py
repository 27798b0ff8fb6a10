"""What a layer type is: its spec, its NumPy forward and hand-derived backward, and a translator per
framework that builds the framework's own layer and says where each canonical parameter lives in it.

A layer type is one module of this package (linear.py is the model to copy); a backend builds a model by
asking each layer's translator and never branches on layer types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np

Shape = tuple[int, ...]  # one example's shape, without the batch axis
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Link:
    """Where one canonical parameter (or state array) lives in a framework's layer: the attribute that holds
    it, and the axes permutation that turns the canonical array into the framework's (None: the same layout;
    (1, 0) for a Dense kernel kept as (in, out))."""

    native: str  # an attribute, or a dotted path through wrappers ("inner.weight")
    to_native: tuple[int, ...] | None = None
    # equal blocks of the canonical first axis in the framework's order (a recurrent layer's gates: Keras's GRU
    # keeps z, r, h where the canonical layer keeps r, z, n: (1, 0, 2)), reordered before the permutation
    blocks: tuple[int, ...] | None = None
    # the array is this index of the framework's array's first axis (Keras's GRU keeps both biases in one (2, 3H)
    # variable: bias_ih is its row 0, bias_hh its row 1); read and written through `read` and `written`
    part: int | None = None

    def of(self, layer: Any) -> Any:
        """The framework's array (parameter, variable) in `layer`, the framework layer a translator built: each
        part of the path an attribute, or an index where it is a number (a module of a container)."""
        found = layer
        for part in self.native.split("."):
            found = found[int(part)] if part.isdigit() else getattr(found, part)
        return found

    def under(self, prefix: str) -> Link:
        """The same array seen from a module that holds this layer at `prefix`."""
        return Link(f"{prefix}.{self.native}", self.to_native, self.blocks, self.part)

    def native_array(self, canonical: np.ndarray) -> np.ndarray:
        if self.blocks is not None:
            canonical = _reordered(canonical, self.blocks)
        return canonical if self.to_native is None else canonical.transpose(self.to_native)

    def canonical_array(self, native: np.ndarray) -> np.ndarray:
        found = native if self.to_native is None else native.transpose(np.argsort(self.to_native))
        return found if self.blocks is None else _reordered(found, tuple(np.argsort(self.blocks)))

    def read(self, whole: np.ndarray) -> np.ndarray:
        """The canonical array from the framework's whole array (its part, where it is one)."""
        return self.canonical_array(whole if self.part is None else whole[self.part])

    def written(self, whole: np.ndarray, canonical: np.ndarray) -> np.ndarray:
        """The framework's whole array with this array written in: the canonical one in its layout, or `whole`
        with its part replaced."""
        if self.part is None:
            return self.native_array(canonical)
        found = np.array(whole, copy=True)
        found[self.part] = self.native_array(canonical)
        return found


def _reordered(array: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The equal blocks of the first axis in `order`."""
    return np.concatenate([np.split(array, len(order))[i] for i in order])


@dataclass(frozen=True)
class Build:
    """What a translator may need to build its framework's layer: the model's dtype, the framework's own
    random state where its layers draw their initial values while they are built (Flax's nnx.Rngs), and the
    shape of one example of the layer's input (where "same" padding needs the size it pads)."""

    dtype: str  # what the layer computes in (Keras: its dtype policy's name, e.g. mixed_bfloat16)
    rngs: Any = None
    shape: Shape = ()
    param_dtype: str = ""  # what it keeps parameters in where the framework takes it apart (Flax): "" the dtype

    @property
    def params_in(self) -> str:
        return self.param_dtype or self.dtype


class Translator:
    """One framework's version of a layer type. The framework is imported inside the methods, when a backend
    of that framework asks: importing a layer module imports no framework."""

    links: ClassVar[Mapping[str, Link]] = {}  # canonical parameter name → where it lives
    state_links: ClassVar[Mapping[str, Link]] = {}  # the same for non-trainable state (running statistics)
    native_default: ClassVar[str] = ""  # what the framework's layer draws or sets by default, for reports

    def links_for(self, layer: Layer) -> Mapping[str, Link]:
        """Where each canonical parameter of `layer` lives (the class's `links`; a layer holding others says
        theirs)."""
        return self.links

    def state_links_for(self, layer: Layer) -> Mapping[str, Link]:
        return self.state_links

    def refuses(self, layer: Layer) -> str | None:
        """Why this framework cannot build `layer` with its options (a convention it cannot take), or None."""
        return None

    def refuses_input(self, layer: Layer, shape: Shape) -> str | None:
        """Why this framework cannot build `layer` for inputs of one example's `shape` (a convention that only
        some sizes bring out), or None."""
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not build {layer.describe()}")

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        """Re-draw the native layer's parameters with the framework's own default (from `draws`, the
        framework's seeded random state where it takes one); nothing for a layer without parameters."""


class Layer(ABC):
    """A layer type's spec: a frozen dataclass of its options, the shapes of its parameters and state in the
    canonical layout, its output shape, and its NumPy forward and backward.

    Parameters are named by the layer ("weight", "bias"); a model names them "{index}.{name}".
    """

    kind: ClassVar[str]  # its name in a model's description and in the worker protocol
    translators: ClassVar[Mapping[str, type[Translator]]] = {}  # framework (backend name) → its translator

    # ---- the spec ----

    def params(self) -> dict[str, Shape]:
        """Trainable parameters: canonical name → shape."""
        return {}

    def state(self) -> dict[str, Shape]:
        """Non-trainable state (running statistics): canonical name → shape."""
        return {}

    def initial_state(self) -> Arrays:
        """The state's starting values (every framework's: running mean 0, variance 1)."""
        return {}

    smallest_batch: ClassVar[int] = 1  # the fewest rows a training batch may have (batch statistics: 2)
    # True for a layer whose framework layers take a mask as a second input in training (dropout.py): its
    # translators are MaskTranslators, and the backend gives the mask of each step
    takes_mask: ClassVar[bool] = False
    takes_ids: ClassVar[bool] = False  # its input is the model's, token ids (Embedding): it comes first

    def check_input(self, X: np.ndarray, where: str) -> None:  # noqa: B027
        """The first layer after the input: a ValueError where the model's input X is not one it takes (a token
        id out of range), naming the layer as `where` and the position."""

    def example_input(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Inputs of `shape` (rows first) this layer takes as the model's first, for examples and checks."""
        return rng.normal(size=shape)

    def input_shape(self) -> Shape | None:
        """The one input shape the layer's options fix, if they fix one (a Linear layer's width)."""
        return None

    @abstractmethod
    def output_shape(self, shape: Shape) -> Shape:
        """The output shape for an input of `shape`; a ValueError says why the input does not fit."""

    def kept_values(self, output: Shape, given: Shape) -> int:
        """Values per example the NumPy forward keeps for its backward beyond its output of shape `output`, for an
        input of shape `given` (a convolution's unrolled windows, a recurrent layer's every step), for the memory
        estimate."""
        return 0

    def keep_mask(self, index: int, step: int, rows: int, shape: Shape, dtype: str) -> np.ndarray:
        """A layer that takes a mask: its mask for training step `step` at position `index` of its model, for
        `rows` examples of `shape`."""
        raise NotImplementedError(f"{self.kind} takes no mask")

    def holder(self, name: str) -> tuple[Layer, str]:
        """The layer that holds this layer's parameter or state `name`, and its name there (a block's branch
        layer: "1.running_mean" is its layer 1's running_mean)."""
        return self, name

    def element_part(self, name: str, index: tuple[int, ...]) -> str:
        """What part of the layer the element `index` of its parameter `name` belongs to, for explain (a recurrent
        layer's gate: "the forget gate's rows"); "" for none."""
        return ""

    @property
    def label(self) -> str:
        """Its short name in messages and tables: the kind (an activation: its function)."""
        return self.kind

    def encode(self) -> Any:
        """The layer's options as JSON (the worker protocol)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def decode(cls, options: Any) -> Layer:
        """encode's inverse."""
        return cls(**options)

    def describe(self) -> str:
        """The layer as written in a model's description, e.g. linear(2, 1)."""
        values = [getattr(self, field.name) for field in fields(self)]  # type: ignore[arg-type]
        return f"{self.kind}({', '.join(str(value) for value in values)})"

    # ---- NumPy: forward, the hand-derived backward, the NumPy backend's own initialiser ----

    @abstractmethod
    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        """The output for input x (batch first), and what backward needs of this call."""

    @abstractmethod
    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        """From dL/d(output): dL/d(input) (None when not needed) and dL/d(each parameter)."""

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Overwrite the parameters with the NumPy backend's default initial values, drawn from rng (a layer
        without parameters has nothing to draw)."""

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        """Small models that use this layer type with each of its options, for the gradient and parity
        checks every backend that builds it must pass (check_backend, the suite's tests)."""
        return []

    def translator(self, framework: str) -> Translator:
        """The translator that builds this layer in `framework`; a ValueError when it has none."""
        found = self.translators.get(framework)
        if found is None:
            raise ValueError(f"layer {self.describe()} has no translator for {framework}; "
                             f"it has: {', '.join(self.translators) or 'none'}")
        return found()


def positive_integer(layer: str, option: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer} {option} must be a positive integer; received: {value!r}")
