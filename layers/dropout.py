"""Dropout with the same masks in every framework.

A framework's Dropout draws its mask inside the training step from its own random state, which no other
framework can reproduce: two backends given the same data and parameters would part at the first step. So
the canonical layer takes its mask as an input. Before each training step the backend draws every dropout
layer's mask in NumPy, from the layer's `seed`, its position in the model and the step's number, and hands it
to the framework's layer, which computes x · mask in training and x in evaluation. The mask holds 0 or 1 / (1 −
rate), divided in the model's dtype: the mask torch's F.dropout makes on a CPU, then multiplies by
(aten/src/ATen/native/Dropout.cpp:74-85, `noise.bernoulli_(1 - p); noise.div_(1 - p); input * noise`: at p = 0.15
float32's 1/0.85 is 1.1764705, one ulp from 1/(1 − p) rounded once), so one multiplication in every framework.

`--init native` draws the masks with each framework's own dropout and random state instead (the framework's
dropout applied to ones gives its mask, scaled): torch's bernoulli_ and div_ on a torch.Generator, mx.nd.Dropout on
MXNet's global RNG, nnx.Dropout on nnx.Rngs, keras.random.dropout on a SeedGenerator, each seeded apart from the
initialiser's stream (`mask_seed`); those runs share no mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Shape, Translator


def mask_seed(seed: int) -> int:
    """The seed of native masks for a model initialised from `seed`: a stream of its own, so a framework whose
    initialiser and dropout share a generator does not draw its first masks from its initial weights' numbers."""
    return int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])


def _check(layer: Layer) -> Dropout:
    assert isinstance(layer, Dropout)
    return layer


class MaskTranslator(Translator):
    """A translator of a layer that takes a mask in training: how its framework holds a mask drawn in NumPy,
    and how the framework's own dropout draws one (native mode)."""

    def given_mask(self, mask: np.ndarray) -> Any:
        """The NumPy mask as the framework's array."""
        return mask

    def mask_draws(self, seed: int) -> Any:
        """The framework's random state the native masks are drawn from, seeded."""
        return np.random.default_rng(seed)

    def native_mask(self, layer: Layer, draws: Any, shape: Shape, dtype: str) -> Any:
        """A mask of `shape` (rows first) as the framework's own dropout draws it from `draws`."""
        rate = _check(layer).rate
        return (draws.random(shape) >= rate).astype(dtype) / np.asarray(1 - rate, dtype=dtype)


class NumpyDropout(MaskTranslator):
    native_default = "dropout: masks from a numpy.random.default_rng"


@cache
def _torch_module() -> type:
    from torch import nn

    class Masked(nn.Module):
        """x · keep in training, given keep; x without one (evaluation)."""

        def forward(self, x: Any, keep: Any = None) -> Any:
            return x if keep is None else x * keep

    return Masked


class TorchDropout(MaskTranslator):
    native_default = "dropout: masks from a torch.Generator, bernoulli_(1 − p) then div_(1 − p) as F.dropout draws"

    def build(self, layer: Layer, build: Build) -> Any:
        return _torch_module()()

    def given_mask(self, mask: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(mask)

    def mask_draws(self, seed: int) -> Any:
        import torch

        return torch.Generator().manual_seed(seed)

    def native_mask(self, layer: Layer, draws: Any, shape: Shape, dtype: str) -> Any:
        import torch

        keep = 1 - _check(layer).rate  # F.dropout on a CPU: noise.bernoulli_(1 − p); noise.div_(1 − p)
        return torch.empty(shape, dtype=getattr(torch, dtype)).bernoulli_(keep, generator=draws).div_(keep)


@cache
def _gluon_block() -> type:
    from mxnet import gluon

    class Masked(gluon.HybridBlock):
        """x · keep in training, given keep; x without one (evaluation)."""

        def hybrid_forward(self, F: Any, x: Any, keep: Any = None) -> Any:
            return x if keep is None else x * keep

    return Masked


class GluonDropout(MaskTranslator):
    native_default = "dropout: masks from mx.nd.Dropout(mode='always') on MXNet's global RNG, reseeded"

    def build(self, layer: Layer, build: Build) -> Any:
        return _gluon_block()()

    def given_mask(self, mask: np.ndarray) -> Any:
        from mxnet import nd

        return nd.array(mask, dtype=mask.dtype)

    def mask_draws(self, seed: int) -> Any:
        import mxnet as mx

        mx.random.seed(seed)  # MXNet has no generator object: its global RNG, as native_init seeds it
        return mx.random

    def native_mask(self, layer: Layer, draws: Any, shape: Shape, dtype: str) -> Any:
        from mxnet import nd

        return nd.Dropout(nd.ones(shape, dtype=dtype), p=_check(layer).rate, mode="always")


@cache
def _nnx_module() -> type:
    from flax import nnx

    class Masked(nnx.Module):
        """x · keep in training, given keep; x without one (evaluation)."""

        def __call__(self, x: Any, keep: Any = None) -> Any:
            return x if keep is None else x * keep

    return Masked


class NnxDropout(MaskTranslator):
    native_default = "dropout: masks from nnx.Dropout with nnx.Rngs(dropout=…)"

    def build(self, layer: Layer, build: Build) -> Any:
        return _nnx_module()()

    def given_mask(self, mask: np.ndarray) -> Any:
        import jax.numpy as jnp

        return jnp.asarray(mask)

    def mask_draws(self, seed: int) -> Any:
        from flax import nnx

        return nnx.Rngs(dropout=seed)

    def native_mask(self, layer: Layer, draws: Any, shape: Shape, dtype: str) -> Any:
        import jax.numpy as jnp
        from flax import nnx

        return nnx.Dropout(_check(layer).rate, rngs=draws)(jnp.ones(shape, dtype=dtype))


@cache
def _keras_layer() -> type:
    import keras

    class Masked(keras.layers.Layer):
        """x · keep in training, given keep; x without one (evaluation)."""

        def call(self, x: Any, keep: Any = None) -> Any:
            return x if keep is None else x * keep

        def compute_output_shape(self, shape: Any) -> Any:
            return shape

    return Masked


class KerasDropout(MaskTranslator):
    native_default = "dropout: masks from keras.random.dropout with a keras.random.SeedGenerator"

    def build(self, layer: Layer, build: Build) -> Any:
        return _keras_layer()(dtype=build.dtype)

    def given_mask(self, mask: np.ndarray) -> Any:
        import tensorflow as tf

        return tf.constant(mask)

    def mask_draws(self, seed: int) -> Any:
        import keras

        return keras.random.SeedGenerator(seed)

    def native_mask(self, layer: Layer, draws: Any, shape: Shape, dtype: str) -> Any:
        import keras

        return keras.random.dropout(keras.ops.ones(shape, dtype=dtype), _check(layer).rate, seed=draws)


@dataclass(frozen=True)
class Dropout(Layer):
    """Each value kept with probability 1 − rate and scaled by 1/(1 − rate) in training, the mask given (drawn
    from `seed`, the layer's position and the step's number: `keep_mask`); the identity in evaluation."""

    rate: float
    seed: int | None = None  # the masks' seed; None: a task's problem draws one from the run's seed (else 0)

    kind: ClassVar[str] = "dropout"
    takes_mask: ClassVar[bool] = True
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "numpy": NumpyDropout, "torch": TorchDropout, "mxnet": GluonDropout, "jax": NnxDropout,
        "tensorflow": KerasDropout}

    def __post_init__(self) -> None:
        rate = self.rate
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.floating) or not 0 <= rate < 1:
            raise ValueError(f"dropout rate must be a number in [0, 1) (the share of values zeroed); "
                             f"received: {rate!r}")
        object.__setattr__(self, "rate", float(rate))
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**63):
            raise ValueError(f"dropout seed must be an integer in [0, 2**63); received: {self.seed!r}")

    def describe(self) -> str:
        return f"dropout({self.rate})" if self.seed is None else f"dropout({self.rate}, seed={self.seed})"

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .activation import Activation
        from .conv import Conv2d
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Linear(3, 4), Activation("tanh"), Dropout(0.5, seed=3), Linear(4, 2)],
                [Input((1, 3, 3)), Conv2d(1, 2, 2), Dropout(0.25), Activation("tanh"), Flatten(), Dropout(0.0),
                 Linear(8, 1)]]

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def kept_values(self, output: Shape, given: Shape) -> int:
        return int(np.prod(output))  # the mask

    def keep_mask(self, index: int, step: int, rows: int, shape: Shape, dtype: str) -> np.ndarray:
        """The mask of training step `step` (counted from 0 since the parameters were set) for this layer at
        position `index` of its model, for `rows` examples of `shape`: 0 where dropped, 1/(1 − rate) where kept."""
        kept = np.random.default_rng((self.seed or 0, index, step)).random((rows, *shape)) >= self.rate
        return kept.astype(dtype) / np.asarray(1 - self.rate, dtype=dtype)  # F.dropout's division, in the dtype

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        """In training, params["keep"] is the step's mask (the NumPy backend gives it beside the parameters)."""
        if not train:
            return x, None
        keep = params["keep"]
        return x * keep, keep

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        if not need_input_grad:
            return None, {}
        return (grad if saved is None else grad * saved), {}
