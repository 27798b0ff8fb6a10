"""Element-wise activations: one table row per function, with its NumPy derivative and each framework's own
version of it; a new activation is a new row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Shape, Translator


@dataclass(frozen=True)
class Function:
    """An activation: NumPy forward, its derivative from the layer's input `a` and output `z`, and the name of
    each framework's own version (torch.nn class, Gluon Activation, jax function, Keras Activation)."""

    forward: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: str
    gluon: str
    jax: str  # an attribute of jax.nn, or "jnp.NAME" for jax.numpy's
    keras: str


FUNCTIONS: dict[str, Function] = {
    "tanh": Function(np.tanh, lambda a, z: 1.0 - z * z, "Tanh", "tanh", "jnp.tanh", "tanh"),
    "relu": Function(lambda a: np.maximum(a, 0), lambda a, z: (a > 0).astype(a.dtype), "ReLU", "relu", "relu",
                     "relu"),
    "sigmoid": Function(lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a, z: z * (1.0 - z), "Sigmoid", "sigmoid",
                        "sigmoid", "sigmoid"),
}
ACTIVATIONS = tuple(FUNCTIONS)


def _function(layer: Layer) -> Function:
    assert isinstance(layer, Activation)
    return FUNCTIONS[layer.name]


class TorchActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        return getattr(nn, _function(layer).torch)()


class GluonActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        return gluon.nn.Activation(_function(layer).gluon)


class JaxActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        import jax
        import jax.numpy as jnp

        name = _function(layer).jax
        return getattr(jnp, name[4:]) if name.startswith("jnp.") else getattr(jax.nn, name)


class KerasActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        return keras.layers.Activation(_function(layer).keras, dtype=build.dtype)


@dataclass(frozen=True)
class Activation(Layer):
    """An element-wise function (FUNCTIONS) of the layer's input."""

    name: str

    kind: ClassVar[str] = "activation"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchActivation, "mxnet": GluonActivation, "jax": JaxActivation, "tensorflow": KerasActivation}

    def __post_init__(self) -> None:
        if self.name not in FUNCTIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; received: {self.name!r}")

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear  # an activation needs parameters around it to be checked

        return [[Linear(3, 4), Activation(name), Linear(4, 1)] for name in FUNCTIONS]

    @property
    def label(self) -> str:
        return self.name

    def encode(self) -> Any:
        return self.name  # {"activation": "tanh"}, as workers of earlier releases read it

    @classmethod
    def decode(cls, options: Any) -> Layer:
        return cls(options["name"] if isinstance(options, dict) else options)

    def describe(self) -> str:
        return self.name

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        z = FUNCTIONS[self.name].forward(x)
        return z, (x, z)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        a, z = saved
        return grad * FUNCTIONS[self.name].derivative(a, z), {}
