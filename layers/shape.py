"""Layers that only say or change an example's shape: Input (the shape a model takes, where no layer's options
fix it: a convolution fixes its channels, not the image's size) and Flatten.

Flatten is a plain reshape of channels-first data, (batch, C, H, W) → (batch, C·H·W) in C order, in every
framework: Keras's and Flax's convolutions run inside channels-last wrappers that give channels-first data
back (wrappers.py), so Keras's Flatten keeps its default data_format (channels_last: no permutation) — its
data_format="channels_first" would move the channels last before flattening, the order a Keras model of
channels-last data has, and a Linear layer after it would see its inputs permuted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Shape, Translator, positive_integer


class TorchIdentity(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        return nn.Identity()


class GluonIdentity(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        return gluon.nn.HybridLambda(lambda F, x: F.identity(x))


class JaxIdentity(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        return _identity


class KerasIdentity(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        return keras.layers.Identity(dtype=build.dtype)


def _identity(x: Any) -> Any:
    return x


def _flattened(x: Any) -> Any:
    return x.reshape(x.shape[0], -1)


@dataclass(frozen=True)
class Input(Layer):
    """The shape of one example (channels first for images and sequences of vectors): the model's input."""

    shape: tuple[int, ...]

    kind: ClassVar[str] = "input"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchIdentity, "mxnet": GluonIdentity, "jax": JaxIdentity, "tensorflow": KerasIdentity}

    def __post_init__(self) -> None:
        shape = tuple(self.shape) if isinstance(self.shape, list | tuple) else self.shape
        if not isinstance(shape, tuple) or not shape:
            raise ValueError(f"Input shape must be one or more positive integers; received: {self.shape!r}")
        for size in shape:
            positive_integer("Input", "shape", size)
        object.__setattr__(self, "shape", shape)

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear

        return [[Input((3,)), Linear(3, 2)]]

    def describe(self) -> str:
        return f"input({', '.join(map(str, self.shape))})"

    def encode(self) -> Any:
        return {"shape": list(self.shape)}

    def input_shape(self) -> Shape:
        return self.shape

    def output_shape(self, shape: Shape) -> Shape:
        if shape != self.shape:
            raise ValueError(f"{self.describe()} takes examples of shape {self.shape}; it follows {shape}")
        return shape

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        return x, None

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        return grad, {}


class TorchFlatten(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        return nn.Flatten()


class GluonFlatten(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        return gluon.nn.Flatten()


class JaxFlatten(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        return _flattened


class KerasFlatten(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        return keras.layers.Flatten(dtype=build.dtype)  # channels_last: a plain reshape (the module's docstring)


@dataclass(frozen=True)
class Flatten(Layer):
    """(batch, *shape) → (batch, prod(shape)), in C order."""

    kind: ClassVar[str] = "flatten"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchFlatten, "mxnet": GluonFlatten, "jax": JaxFlatten, "tensorflow": KerasFlatten}

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear

        return [[Input((2, 3)), Flatten(), Linear(6, 1)]]

    def describe(self) -> str:
        return "flatten"

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        return x.reshape(len(x), -1), x.shape

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        return grad.reshape(saved), {}
