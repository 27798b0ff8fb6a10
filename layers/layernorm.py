"""Layer normalisation over the last axis of each example (its features; a sequence's per step), with and
without the affine γ, β. Where the frameworks part:

- ε: torch 1e-5 (torch/nn/modules/normalization.py:191), Gluon 1e-5 (mxnet/gluon/nn/basic_layers.py:734; its
  op holds it as a 32-bit float, `LayerNormParam`'s `float eps`), Flax 1e-6 (flax/nnx/nn/normalization.py:442),
  Keras 1e-3 (keras/src/layers/normalization/layer_normalization.py:108): given explicitly to every one;
- Flax computes the variance as E[x²] − E[x]² by default (`use_fast_variance=True`): built with False here;
- no affine parameters: torch `elementwise_affine=False`, Gluon and Keras `center=False, scale=False`, Flax
  `use_bias=False, use_scale=False` (Gluon still makes γ and β, held at 1 and 0 with grad_req "null").

Every framework normalises with the biased variance and keeps no running statistics.
Parameters (affine): weight (γ, features), bias (β, features).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer

LAYERNORM_DEFAULT = "LayerNorm: γ = 1, β = 0"  # every framework's


def _check(layer: Layer) -> LayerNorm:
    assert isinstance(layer, LayerNorm)
    return layer


class TorchLayerNorm(Translator):
    native_default = LAYERNORM_DEFAULT
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("weight"), "bias": Link("bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        norm = _check(layer)
        return nn.LayerNorm(norm.features, eps=norm.eps, elementwise_affine=norm.affine)


class GluonLayerNorm(Translator):
    native_default = LAYERNORM_DEFAULT
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("gamma"), "bias": Link("beta")}

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        norm = _check(layer)
        return gluon.nn.LayerNorm(axis=-1, epsilon=norm.eps, center=norm.affine, scale=norm.affine,
                                  in_channels=norm.features)


class NnxLayerNorm(Translator):
    native_default = LAYERNORM_DEFAULT
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("scale"), "bias": Link("bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        norm = _check(layer)
        return nnx.LayerNorm(norm.features, epsilon=norm.eps, use_bias=norm.affine, use_scale=norm.affine,
                             use_fast_variance=False, dtype=build.dtype, param_dtype=build.params_in, rngs=build.rngs)


class KerasLayerNorm(Translator):
    native_default = LAYERNORM_DEFAULT
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("gamma"), "bias": Link("beta")}

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        norm = _check(layer)
        return keras.layers.LayerNormalization(axis=-1, epsilon=norm.eps, center=norm.affine, scale=norm.affine,
                                               dtype=build.dtype)


@dataclass(frozen=True)
class LayerNorm(Layer):
    """y = γ (x − μ) / √(σ² + ε) + β, μ and σ² (biased) over the last axis of each example."""

    features: int
    eps: float = 1e-5
    affine: bool = True

    kind: ClassVar[str] = "layernorm"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchLayerNorm, "mxnet": GluonLayerNorm, "jax": NnxLayerNorm, "tensorflow": KerasLayerNorm}

    def __post_init__(self) -> None:
        positive_integer("LayerNorm", "features", self.features)
        if isinstance(self.eps, bool) or not isinstance(self.eps, int | float) or not 0 < self.eps < 1:
            raise ValueError(f"LayerNorm eps must be a number in (0, 1); received: {self.eps!r}")
        if not isinstance(self.affine, bool):
            raise ValueError(f"LayerNorm affine must be True or False; received: {self.affine!r}")

    def describe(self) -> str:
        return f"layernorm({self.features}, eps={self.eps:g}{'' if self.affine else ', affine=False'})"

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .activation import Activation
        from .conv import Conv1d
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Linear(3, 4), LayerNorm(4), Activation("tanh"), Linear(4, 2)],
                [Linear(3, 5), LayerNorm(5, eps=1e-3, affine=False), Linear(5, 1)],
                [Input((2, 6)), Conv1d(2, 3, 2), LayerNorm(5), Flatten(), Linear(15, 1)]]

    def params(self) -> dict[str, Shape]:
        return {"weight": (self.features,), "bias": (self.features,)} if self.affine else {}

    def input_shape(self) -> Shape:
        return (self.features,)  # where it comes first; after another layer, (…, features)

    def output_shape(self, shape: Shape) -> Shape:
        if not shape or shape[-1] != self.features:
            raise ValueError(f"{self.describe()} normalises the last axis, of {self.features} values; it follows an "
                             f"output of shape {shape}")
        return shape

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        centred = x - x.mean(axis=-1, keepdims=True)
        inverse = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + self.eps)
        normalised = centred * inverse
        out = normalised * params["weight"] + params["bias"] if self.affine else normalised
        return out, (normalised, inverse)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        normalised, inverse = saved
        outer = tuple(range(grad.ndim - 1))  # every axis but the features'
        grads = ({"weight": (grad * normalised).sum(axis=outer), "bias": grad.sum(axis=outer)} if self.affine
                 else {})
        if not need_input_grad:
            return None, grads
        scaled = grad * params["weight"] if self.affine else grad  # dL/d(normalised)
        # Through the example's mean and variance: (1/σ)(g − mean(g) − x̂ · mean(g · x̂)) over the features.
        return inverse * (scaled - scaled.mean(axis=-1, keepdims=True)
                          - normalised * (scaled * normalised).mean(axis=-1, keepdims=True)), grads

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        if self.affine:
            params["weight"][...] = 1.0
            params["bias"][...] = 0.0
