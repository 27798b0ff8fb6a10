"""Batch normalisation per feature of (batch, features) inputs, or per channel of (batch, channels, *spatial) ones
(statistics over the batch and every position), where the frameworks part most:

- momentum: canonical `momentum` is the share of the old running value kept (Keras, Flax, Gluon); torch's
  `momentum` is the share of the new batch statistic, 1 − ours (torch/nn/modules/batchnorm.py, `momentum`);
- ε: each framework's default differs (torch, Gluon, Flax 1e-5; Keras 1e-3): given explicitly to every one;
- the variance: every framework normalises with the biased batch variance, but torch stores the *unbiased*
  one (× n/(n−1)) in running_var (its docstring: "the value stored in the moving average … is calculated via
  the unbiased estimator"), so its eval-mode outputs differ after the first step. The canonical layer says
  which it keeps (`unbiased_running_var`); a translator that cannot keep the other refuses to build it;
- Flax computes the variance as E[x²] − E[x]² by default (`use_fast_variance=True`): built with False here;
- the channel axis: torch's BatchNorm1d takes (N, C) and (N, C, L), BatchNorm2d (N, C, H, W); Gluon's, Flax's
  and Keras's layers take the axis (1 here: no transposes);
- Gluon's γ: `gluon.nn.BatchNorm(scale=True)` passes fix_gamma=False to the op, whose own default is
  fix_gamma=True (γ held at 1 whatever it holds: the legacy of mx.sym.BatchNorm), so a Gluon model built on
  the op, not the layer, ignores its trained γ.

Parameters: weight (γ, features), bias (β, features); state: running_mean (zeros), running_var (ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer

BATCHNORM_DEFAULT = "BatchNorm: γ = 1, β = 0, running mean 0 and variance 1"  # every framework's


def _check(layer: Layer) -> BatchNorm:
    assert isinstance(layer, BatchNorm)
    return layer


class _BiasedOnly(Translator):
    what: ClassVar[str]  # the framework's layer, in the reason it gives

    def refuses(self, layer: Layer) -> str | None:
        if _check(layer).unbiased_running_var:
            return (f"{self.what} keeps the biased batch variance in its running variance (--batchnorm biased, or "
                    "batchnorm(running_var=biased) in --layers)")
        return None


class TorchBatchNorm(Translator):
    native_default = BATCHNORM_DEFAULT
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("weight"), "bias": Link("bias")}
    state_links: ClassVar[Mapping[str, Link]] = {"running_mean": Link("running_mean"),
                                                 "running_var": Link("running_var")}

    def refuses(self, layer: Layer) -> str | None:
        if not _check(layer).unbiased_running_var:
            return ("nn.BatchNorm1d and nn.BatchNorm2d keep the unbiased batch variance (× n/(n−1)) in running_var, "
                    "whatever their options: unbiased_running_var=True (--batchnorm unbiased, or "
                    "batchnorm(running_var=unbiased) in --layers)")
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        norm = _check(layer)
        kind = nn.BatchNorm2d if len(build.shape) == 3 else nn.BatchNorm1d  # (C, H, W); (C,) or (C, L)
        return kind(norm.features, eps=norm.eps, momentum=1.0 - norm.momentum)


class GluonBatchNorm(_BiasedOnly):
    native_default = BATCHNORM_DEFAULT
    what = "Gluon's BatchNorm"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("gamma"), "bias": Link("beta")}
    state_links: ClassVar[Mapping[str, Link]] = {"running_mean": Link("running_mean"),
                                                 "running_var": Link("running_var")}

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        norm = _check(layer)
        # No dtype option: the backend casts the whole network (running statistics included) to the model's.
        return gluon.nn.BatchNorm(axis=1, momentum=norm.momentum, epsilon=norm.eps, in_channels=norm.features)


class NnxBatchNorm(_BiasedOnly):
    native_default = BATCHNORM_DEFAULT
    what = "nnx.BatchNorm"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("scale"), "bias": Link("bias")}
    state_links: ClassVar[Mapping[str, Link]] = {"running_mean": Link("mean"), "running_var": Link("var")}

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        norm = _check(layer)
        return nnx.BatchNorm(norm.features, axis=1, momentum=norm.momentum, epsilon=norm.eps,
                             use_fast_variance=False, dtype=build.dtype, param_dtype=build.params_in, rngs=build.rngs)


class KerasBatchNorm(_BiasedOnly):
    native_default = BATCHNORM_DEFAULT
    what = "keras.layers.BatchNormalization"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("gamma"), "bias": Link("beta")}
    state_links: ClassVar[Mapping[str, Link]] = {"running_mean": Link("moving_mean"),
                                                 "running_var": Link("moving_variance")}

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        norm = _check(layer)
        return keras.layers.BatchNormalization(axis=1, momentum=norm.momentum, epsilon=norm.eps, dtype=build.dtype)


@dataclass(frozen=True)
class BatchNorm(Layer):
    """y = γ (x − μ) / √(σ² + ε) + β per feature: batch statistics in training (the running ones updated as
    running ← momentum · running + (1 − momentum) · batch), the running statistics in evaluation."""

    features: int
    momentum: float = 0.9
    eps: float = 1e-5
    unbiased_running_var: bool = False  # torch's convention: running_var takes the batch variance × n/(n−1)

    kind: ClassVar[str] = "batchnorm"
    smallest_batch: ClassVar[int] = 2  # torch refuses one row in training; the others normalise it to β
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchBatchNorm, "mxnet": GluonBatchNorm, "jax": NnxBatchNorm, "tensorflow": KerasBatchNorm}

    def __post_init__(self) -> None:
        positive_integer("BatchNorm", "features", self.features)
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, int | float) or not 0 <= self.momentum < 1:
            raise ValueError(f"BatchNorm momentum must be a number in [0, 1) (the share of the running statistic "
                             f"kept at each step); received: {self.momentum!r}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, int | float) or not 0 < self.eps < 1:
            raise ValueError(f"BatchNorm eps must be a number in (0, 1); received: {self.eps!r}")

    def describe(self) -> str:
        extra = ", unbiased_running_var=True" if self.unbiased_running_var else ""
        return f"batchnorm({self.features}, momentum={self.momentum:g}, eps={self.eps:g}{extra})"

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .activation import Activation
        from .conv import Conv2d
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Linear(3, 4), BatchNorm(4), Activation("tanh"), Linear(4, 2)],
                [Linear(3, 4), BatchNorm(4, momentum=0.5, eps=1e-3, unbiased_running_var=True), Linear(4, 2)],
                [Input((1, 3, 3)), Conv2d(1, 2, 2), BatchNorm(2, momentum=0.8), Activation("tanh"), Flatten(),
                 Linear(8, 1)],
                [Input((1, 3, 3)), Conv2d(1, 2, 2), BatchNorm(2, unbiased_running_var=True), Flatten(), Linear(8, 1)]]

    def params(self) -> dict[str, Shape]:
        return {"weight": (self.features,), "bias": (self.features,)}

    def state(self) -> dict[str, Shape]:
        return {"running_mean": (self.features,), "running_var": (self.features,)}

    def initial_state(self) -> Arrays:
        return {"running_mean": np.zeros(self.features), "running_var": np.ones(self.features)}

    def input_shape(self) -> Shape:
        return (self.features,)  # (features,) where it comes first; after a convolution, (channels, *spatial)

    def output_shape(self, shape: Shape) -> Shape:
        if not 1 <= len(shape) <= 3 or shape[0] != self.features:
            raise ValueError(f"{self.describe()} takes inputs of shape ({self.features},) (batch, features) or "
                             f"({self.features}, …) (batch, channels, *spatial); it follows an output of shape {shape}")
        return shape

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        """In training, also updates params["running_mean"] and params["running_var"] in place (the NumPy
        backend hands a layer its state beside its parameters)."""
        axes = (0, *range(2, x.ndim))  # every axis but the channels'
        per_channel = (-1, *(1,) * (x.ndim - 2))
        if train:
            mean = x.mean(axis=axes)
            centred = x - mean.reshape(per_channel)
            var = np.mean(centred * centred, axis=axes)  # biased, two passes: what every framework normalises with
            n = x.size // self.features
            kept = var * (n / (n - 1)) if self.unbiased_running_var and n > 1 else var
            if "running_mean" in params:
                params["running_mean"][...] = self.momentum * params["running_mean"] + (1 - self.momentum) * mean
                params["running_var"][...] = self.momentum * params["running_var"] + (1 - self.momentum) * kept
        else:
            centred, var = x - params["running_mean"].reshape(per_channel), params["running_var"]
        inverse = (1.0 / np.sqrt(var + self.eps)).reshape(per_channel)
        normalised = centred * inverse
        out = normalised * params["weight"].reshape(per_channel) + params["bias"].reshape(per_channel)
        return out, (normalised, inverse, train)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        normalised, inverse, train = saved
        axes = (0, *range(2, grad.ndim))
        per_channel = (-1, *(1,) * (grad.ndim - 2))
        grads = {"weight": (grad * normalised).sum(axis=axes), "bias": grad.sum(axis=axes)}
        if not need_input_grad:
            return None, grads
        scaled = grad * params["weight"].reshape(per_channel)  # dL/d(normalised)
        if not train:  # the running statistics are constants
            return scaled * inverse, grads
        # Through the batch mean and variance: (1/σ)(g − mean(g) − x̂ · mean(g · x̂)), per channel.
        return inverse * (scaled - scaled.mean(axis=axes, keepdims=True)
                          - normalised * (scaled * normalised).mean(axis=axes, keepdims=True)), grads

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        params["weight"][...] = 1.0  # γ = 1, β = 0: every framework's default
        params["bias"][...] = 0.0
