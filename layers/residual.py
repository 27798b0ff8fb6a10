"""A residual block, x + f(x): `branch` is a stack of layers whose output has the input's shape (written
`add(conv2d(8, 3, padding=same), relu, conv2d(8, 3, padding=same))` in --layers), so ResNet-style stacks can be
written. Every framework gets a module of its own that holds the branch's layers, each built by its own
translator, and adds the input to their output.

The branch's parameters are named by the block's index, then the branch layer's: "3.0.weight" is the weight of the
first layer of the branch of layer 3; the branch's running statistics likewise ("3.1.running_mean"). Dropout is not
taken inside a branch (yet): its masks are given to the model's top-level layers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator


def _residual(layer: Layer) -> Residual:
    assert isinstance(layer, Residual)
    return layer


def _branch_shapes(block: Residual, shape: Shape) -> list[Shape]:
    shapes = [shape]
    for layer in block.branch[:-1]:
        shapes.append(layer.output_shape(shapes[-1]))
    return shapes


class _BranchTranslator(Translator):
    """Builds each branch layer with its own translator for `framework`, and says where their arrays live under
    the module's container at `path` (with the index of each branch layer after it)."""

    framework: ClassVar[str]
    path: ClassVar[str]  # the container of the branch layers, as Link paths read it

    def _translators(self, layer: Layer) -> list[Translator]:
        return [inner.translator(self.framework) for inner in _residual(layer).branch]

    def refuses(self, layer: Layer) -> str | None:
        for inner, translator in zip(_residual(layer).branch, self._translators(layer), strict=True):
            reason = translator.refuses(inner)
            if reason is not None:
                return f"its branch's {inner.describe()}: {reason}"
        return None

    def links_for(self, layer: Layer) -> Mapping[str, Link]:
        return {f"{j}.{name}": link.under(f"{self.path}.{j}")
                for j, (inner, translator) in enumerate(zip(_residual(layer).branch, self._translators(layer),
                                                            strict=True))
                for name, link in translator.links_for(inner).items() if name in inner.params()}

    def state_links_for(self, layer: Layer) -> Mapping[str, Link]:
        return {f"{j}.{name}": link.under(f"{self.path}.{j}")
                for j, (inner, translator) in enumerate(zip(_residual(layer).branch, self._translators(layer),
                                                            strict=True))
                for name, link in translator.state_links_for(inner).items() if name in inner.state()}

    def _built(self, layer: Layer, build: Build) -> list[Any]:
        block = _residual(layer)
        self._inner = self._translators(layer)  # kept for native_init, which is given the modules alone
        return [translator.build(inner, dataclasses.replace(build, shape=shape)) for inner, translator, shape
                in zip(block.branch, self._inner, _branch_shapes(block, build.shape), strict=True)]

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        for translator, module in zip(self._inner, native.branch, strict=True):
            translator.native_init(module, draws, dtype)


@cache
def _torch_block() -> type:
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, branch: list[Any]) -> None:
            super().__init__()
            self.branch = nn.Sequential(*branch)

        def forward(self, x: Any) -> Any:
            return x + self.branch(x)

    return Residual


class TorchResidual(_BranchTranslator):
    framework, path = "torch", "branch"

    def build(self, layer: Layer, build: Build) -> Any:
        return _torch_block()(self._built(layer, build))


@cache
def _gluon_block() -> type:
    from mxnet import gluon

    class Residual(gluon.HybridBlock):
        def __init__(self, branch: list[Any]) -> None:
            super().__init__()
            with self.name_scope():
                self.branch = gluon.nn.HybridSequential()
                self.branch.add(*branch)

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            return x + self.branch(x)

    return Residual


class GluonResidual(_BranchTranslator):
    framework, path = "mxnet", "branch"

    def build(self, layer: Layer, build: Build) -> Any:
        return _gluon_block()(self._built(layer, build))


@cache
def _nnx_block() -> type:
    from flax import nnx

    class Residual(nnx.Module):
        def __init__(self, branch: list[Any]) -> None:
            self.branch = nnx.Sequential(*branch)

        def __call__(self, x: Any) -> Any:
            return x + self.branch(x)

    return Residual


class NnxResidual(_BranchTranslator):
    framework, path = "jax", "branch.layers"

    def build(self, layer: Layer, build: Build) -> Any:
        return _nnx_block()(self._built(layer, build))


@cache
def _keras_block() -> type:
    import keras

    class Residual(keras.layers.Layer):
        def __init__(self, branch: list[Any], **kwargs: Any) -> None:
            super().__init__(dtype=branch[0].dtype_policy, **kwargs)
            self.branch = branch

        def call(self, x: Any) -> Any:
            out = x
            for layer in self.branch:
                out = layer(out)
            return x + out

    return Residual


class KerasResidual(_BranchTranslator):
    framework, path = "tensorflow", "branch"

    def build(self, layer: Layer, build: Build) -> Any:
        return _keras_block()(self._built(layer, build))


@dataclass(frozen=True)
class Residual(Layer):
    """x + branch(x), the branch a stack of layers that gives its input's shape back."""

    branch: tuple[Layer, ...]

    kind: ClassVar[str] = "add"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchResidual, "mxnet": GluonResidual, "jax": NnxResidual, "tensorflow": KerasResidual}

    def __post_init__(self) -> None:
        branch = tuple(self.branch) if isinstance(self.branch, list | tuple) else self.branch
        if not isinstance(branch, tuple) or not branch or not all(isinstance(layer, Layer) for layer in branch):
            raise ValueError(f"add takes one or more layers (its branch); received: {self.branch!r}")
        masked = [layer.describe() for layer in branch if layer.takes_mask]
        if masked:
            raise ValueError(f"add does not take dropout in its branch (yet): {masked[0]}; put it before or after add")
        object.__setattr__(self, "branch", branch)
        # batch statistics inside the branch need what they need at the top level
        object.__setattr__(self, "smallest_batch", max(layer.smallest_batch for layer in branch))

    def describe(self) -> str:
        return f"add({', '.join(layer.describe() for layer in self.branch)})"

    def encode(self) -> Any:
        return {"branch": [{layer.kind: layer.encode()} for layer in self.branch]}

    @classmethod
    def decode(cls, options: Any) -> Layer:
        from . import layer_type  # the registry, which imports this module

        found = []
        for item in options["branch"]:
            ((kind, inner),) = item.items()
            found.append(layer_type(kind).decode(inner))
        return cls(tuple(found))

    def params(self) -> dict[str, Shape]:
        return {f"{j}.{name}": shape for j, layer in enumerate(self.branch) for name, shape in layer.params().items()}

    def state(self) -> dict[str, Shape]:
        return {f"{j}.{name}": shape for j, layer in enumerate(self.branch) for name, shape in layer.state().items()}

    def initial_state(self) -> Arrays:
        return {f"{j}.{name}": value for j, layer in enumerate(self.branch)
                for name, value in layer.initial_state().items()}

    def input_shape(self) -> Shape | None:
        return self.branch[0].input_shape()

    def output_shape(self, shape: Shape) -> Shape:
        out = shape
        for j, layer in enumerate(self.branch):
            try:
                out = layer.output_shape(out)
            except ValueError as err:
                raise ValueError(f"{self.describe()}: its branch's layer {j + 1} {err}") from None
        if out != shape:
            raise ValueError(f"{self.describe()}: its branch gives shape {out} for an input of shape {shape}; x + f(x) "
                             "needs the same")
        return shape

    def holder(self, name: str) -> tuple[Layer, str]:
        j, _, rest = name.partition(".")
        return self.branch[int(j)].holder(rest)

    def _own(self, params: Mapping[str, np.ndarray], j: int) -> dict[str, np.ndarray]:
        prefix = f"{j}."
        return {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        out, saved = x, []
        for j, layer in enumerate(self.branch):
            out, kept = layer.forward(self._own(params, j), out, train)
            saved.append(kept)
        return x + out, saved

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        grads: Arrays = {}
        g: np.ndarray | None = grad
        for j in reversed(range(len(self.branch))):
            assert g is not None
            g, found = self.branch[j].backward(self._own(params, j), saved[j], g, True)
            grads.update({f"{j}.{name}": value for name, value in found.items()})
        assert g is not None
        return (grad + g if need_input_grad else None), grads  # the identity path and the branch's

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        for j, layer in enumerate(self.branch):
            layer.numpy_init(rng, self._own(params, j))

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .activation import Activation
        from .batchnorm import BatchNorm
        from .conv import Conv2d
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Linear(3, 4), Residual((Linear(4, 4), Activation("relu"))), Linear(4, 1)],
                [Input((2, 3, 3)), Residual((Conv2d(2, 2, 3, padding="same"), Activation("tanh"),
                                             Conv2d(2, 2, 1, bias=False))), Flatten(), Linear(18, 1)],
                [Input((2, 3, 3)), Residual((Conv2d(2, 2, 3, padding="same", bias=False), BatchNorm(2, momentum=0.8),
                                             Activation("relu"))), Flatten(), Linear(18, 1)]]



