"""Linear: y = x @ weight.T + bias over the last axis; weight (out_features, in_features), bias (out_features,)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer

_KERNEL = Link("kernel", (1, 0))  # Keras and Flax keep the kernel as (in, out)


class TorchLinear(Translator):
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("weight"), "bias": Link("bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        assert isinstance(layer, Linear)
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)  # the backend casts the model

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        native.reset_parameters()  # kaiming_uniform(a=√5) weight, U(±1/√fan_in) bias, from torch's global RNG


class GluonDense(Translator):
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("weight"), "bias": Link("bias")}  # (units, in_units)

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        assert isinstance(layer, Linear)
        # in_units given, so no deferred initialisation: parameters exist before a forward.
        return gluon.nn.Dense(layer.out_features, in_units=layer.in_features, use_bias=layer.bias, dtype=build.dtype)


class NnxLinear(Translator):
    links: ClassVar[Mapping[str, Link]] = {"weight": _KERNEL, "bias": Link("bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        assert isinstance(layer, Linear)
        return nnx.Linear(layer.in_features, layer.out_features, use_bias=layer.bias, dtype=build.dtype,
                          param_dtype=build.params_in, rngs=build.rngs)  # lecun_normal kernel, zero bias


class KerasDense(Translator):
    links: ClassVar[Mapping[str, Link]] = {"weight": _KERNEL, "bias": Link("bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        assert isinstance(layer, Linear)
        return keras.layers.Dense(layer.out_features, use_bias=layer.bias, dtype=build.dtype)

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        import keras

        native.kernel.assign(keras.initializers.GlorotUniform(seed=draws)(native.kernel.shape, dtype))
        if native.use_bias:
            native.bias.assign(keras.initializers.Zeros()(native.bias.shape, dtype))


@dataclass(frozen=True)
class Linear(Layer):
    """y = x @ weight.T + bias, weight (out_features, in_features)."""

    in_features: int
    out_features: int
    bias: bool = True

    kind: ClassVar[str] = "linear"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchLinear, "mxnet": GluonDense, "jax": NnxLinear, "tensorflow": KerasDense}

    def __post_init__(self) -> None:
        for field in ("in_features", "out_features"):
            positive_integer("Linear", field, getattr(self, field))

    def describe(self) -> str:
        return f"linear({self.in_features}, {self.out_features}{'' if self.bias else ', bias=False'})"

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        return [[Linear(3, 2)], [Linear(3, 2, bias=False), Linear(2, 1)]]

    def params(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            shapes["bias"] = (self.out_features,)
        return shapes

    def input_shape(self) -> Shape:
        return (self.in_features,)

    def output_shape(self, shape: Shape) -> Shape:
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"{self.describe()} takes inputs of width in_features={self.in_features}; "
                             f"it follows an output of shape {shape}")
        return (*shape[:-1], self.out_features)

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        z = x @ params["weight"].T  # (batch, …, out)
        if self.bias:
            z += params["bias"]
        return z, x

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        x = saved
        rows = grad.reshape(-1, self.out_features)  # every position over the leading axes is an example
        grads = {"weight": rows.T @ x.reshape(-1, self.in_features)}  # (out, in)
        if self.bias:
            grads["bias"] = rows.sum(axis=0)
        return (grad @ params["weight"] if need_input_grad else None), grads

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        bound = 1.0 / np.sqrt(self.in_features)  # U(±1/√fan_in), weights and biases alike
        for value in params.values():
            value[...] = rng.uniform(-bound, bound, size=value.shape)
