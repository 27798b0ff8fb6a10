"""Convolution over 1 or 2 spatial axes (Conv1d, Conv2d), canonical layout NC(H)W data and O I/g (H) W kernels
(torch, MXNet); where the frameworks part:

- layout: Keras and Flax keep kernels as (H, W, I/g, O) and convolve channels-last data: their layer runs
  inside a wrapper that transposes (wrappers.py), and the kernel crosses with Link(…, (2, 3, 1, 0));
- "same" padding: TensorFlow's and JAX's convention (⌈n/s⌉ outputs, an odd total padding with the extra row
  and column after). torch takes padding="same" for stride 1 only (torch/nn/modules/conv.py: "padding='same'
  is not supported for strided convolutions") and MXNet takes symmetric padding only: both get the canonical
  padding as numbers, and through their own pad op first when it is not the same on both sides;
- explicit padding: Keras's Conv layers take only "valid" and "same": numbers go through ZeroPadding first;
- Keras refuses stride > 1 together with dilation > 1 (its Conv layers raise): a named refusal here.

Parameters: weight (out_channels, in_channels/groups, *kernel_size), bias (out_channels,).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer
from .windows import (
    PADDING_WORDS,
    Pads,
    output_sizes,
    padded,
    per_axis,
    same_pads,
    scatter_windows,
    unpadded,
    windows,
)
from .wrappers import gluon_padded, keras_channels_last, nnx_channels_last, torch_padded


def _conv(layer: Layer) -> Conv:
    assert isinstance(layer, Conv)
    return layer


def _split_padding(pads: Pads) -> tuple[Any, Pads]:
    """Padding as torch's and Gluon's layers take it (one number per axis, both sides) and what must be
    padded before them instead (a side with more), as (numbers, explicit): one of them all zeros."""
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads), ()
    return (0,) * len(pads), pads


def _channels_last_kernel(rank: int) -> Link:
    return Link("inner.kernel", (*range(2, rank + 2), 1, 0))  # (O, I, *K) → (*K, I, O)


class TorchConv(Translator):
    native_default = ("nn.Conv reset_parameters: kaiming_uniform(a=√5) kernels, U(±1/√fan_in) biases, fan_in = "
                      "in/groups·kernel area")
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("inner.weight"), "bias": Link("inner.bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        conv = _conv(layer)
        # As numbers: torch's own padding="same" pads as the canonical layer for stride 1, but warns for an
        # even kernel that it copies the input padded, which is what torch_padded does, said or not.
        padding, explicit = _split_padding(conv.pads(build.shape))
        module = (nn.Conv1d, nn.Conv2d)[conv.rank - 1](
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias)
        return torch_padded(explicit, module)

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        native.inner.reset_parameters()  # kaiming_uniform(a=√5) weight, U(±1/√fan_in) bias (fan_in = I/g·k)


class GluonConv(Translator):
    native_default = "Conv kernels Uniform(-0.07, 0.07) as Dense weights, zero biases"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("inner.weight"), "bias": Link("inner.bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        conv = _conv(layer)
        padding, explicit = _split_padding(conv.pads(build.shape))
        module = (gluon.nn.Conv1D, gluon.nn.Conv2D)[conv.rank - 1](
            conv.out_channels, conv.kernel_size, strides=conv.stride, padding=padding, dilation=conv.dilation,
            groups=conv.groups, in_channels=conv.in_channels, use_bias=conv.bias)
        return gluon_padded(explicit, module)


class NnxConv(Translator):
    native_default = "nnx.Conv defaults: lecun_normal kernels, zero biases"

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        conv = _conv(layer)
        padding = "SAME" if conv.padding == "same" else conv.pads(build.shape)
        module = nnx.Conv(conv.in_channels, conv.out_channels, conv.kernel_size, strides=conv.stride,
                          padding=padding, kernel_dilation=conv.dilation, feature_group_count=conv.groups,
                          use_bias=conv.bias, dtype=build.dtype, param_dtype=build.params_in, rngs=build.rngs)
        return nnx_channels_last(module, conv.rank)  # lecun_normal kernel, zero bias


class KerasConv(Translator):
    native_default = "Conv defaults: glorot_uniform kernels (fans: kernel area × channels), zero biases"

    def refuses(self, layer: Layer) -> str | None:
        conv = _conv(layer)
        if max(conv.stride) > 1 and max(conv.dilation) > 1:
            return "keras.layers.Conv takes stride > 1 or dilation > 1, not both"
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        conv = _conv(layer)
        same = conv.padding == "same"
        module = (keras.layers.Conv1D, keras.layers.Conv2D)[conv.rank - 1](
            conv.out_channels, conv.kernel_size, strides=conv.stride, padding="same" if same else "valid",
            dilation_rate=conv.dilation, groups=conv.groups, use_bias=conv.bias, dtype=build.dtype)
        return keras_channels_last(module, conv.rank, () if same else conv.pads(build.shape))

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        import keras

        kernel = native.inner.kernel
        kernel.assign(keras.initializers.GlorotUniform(seed=draws)(kernel.shape, dtype))
        if native.inner.use_bias:
            native.inner.bias.assign(keras.initializers.Zeros()(native.inner.bias.shape, dtype))


def _kernel_links(rank: int) -> dict[str, Link]:
    return {"weight": _channels_last_kernel(rank), "bias": Link("inner.bias")}


class NnxConv1d(NnxConv):
    links: ClassVar[Mapping[str, Link]] = _kernel_links(1)


class NnxConv2d(NnxConv):
    links: ClassVar[Mapping[str, Link]] = _kernel_links(2)


class KerasConv1d(KerasConv):
    links: ClassVar[Mapping[str, Link]] = _kernel_links(1)


class KerasConv2d(KerasConv):
    links: ClassVar[Mapping[str, Link]] = _kernel_links(2)


@dataclass(frozen=True)
class Conv(Layer):
    """Cross-correlation of (batch, in_channels, *spatial) inputs with out_channels kernels of kernel_size,
    each seeing in_channels/groups input channels; padding is zeros: a number (or one per axis) on both sides,
    "valid" (none) or "same" (the module's docstring)."""

    in_channels: int
    out_channels: int
    kernel_size: Any
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    bias: bool = True

    rank: ClassVar[int]

    def __post_init__(self) -> None:
        name = self.kind
        for field in ("in_channels", "out_channels", "groups"):
            positive_integer(name, field, getattr(self, field))
        for field in ("kernel_size", "stride", "dilation"):
            object.__setattr__(self, field, per_axis(name, field, getattr(self, field), self.rank))
        if isinstance(self.padding, str):
            if self.padding not in PADDING_WORDS:
                raise ValueError(f"{name} padding must be a number, {self.rank} numbers, 'same' or 'valid'; "
                                 f"received: {self.padding!r}")
        else:
            object.__setattr__(self, "padding", per_axis(name, "padding", self.padding, self.rank, minimum=0))
        for field in ("in_channels", "out_channels"):
            if getattr(self, field) % self.groups:
                raise ValueError(f"{name} {field}={getattr(self, field)} must be a multiple of groups={self.groups}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"{name} bias must be True or False; received: {self.bias!r}")

    def describe(self) -> str:
        def axes(value: Any) -> str:
            return str(value[0]) if isinstance(value, tuple) and len(set(value)) == 1 else str(value)

        extra = [f"stride={axes(self.stride)}" if max(self.stride) > 1 else "",
                 f"padding={self.padding}" if isinstance(self.padding, str) else
                 f"padding={axes(self.padding)}" if max(self.padding) else "",
                 f"dilation={axes(self.dilation)}" if max(self.dilation) > 1 else "",
                 f"groups={self.groups}" if self.groups > 1 else "", "" if self.bias else "bias=False"]
        return (f"{self.kind}({self.in_channels}, {self.out_channels}, {axes(self.kernel_size)}"
                f"{''.join(', ' + part for part in extra if part)})")

    def encode(self) -> Any:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
                "dilation": list(self.dilation), "groups": self.groups, "bias": self.bias}

    @classmethod
    def decode(cls, options: Any) -> Layer:
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in options.items()})  # type: ignore[arg-type]

    def params(self) -> dict[str, Shape]:
        shapes: dict[str, Shape] = {"weight": (self.out_channels, self.in_channels // self.groups,
                                               *self.kernel_size)}
        if self.bias:
            shapes["bias"] = (self.out_channels,)
        return shapes

    def pads(self, shape: Shape) -> Pads:
        """(before, after) zeros per spatial axis for an input of `shape` (channels first)."""
        if self.padding == "same":
            return same_pads(shape[1:], self.kernel_size, self.stride, self.dilation)
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        return tuple((p, p) for p in self.padding)

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != self.rank + 1 or shape[0] != self.in_channels:
            layout = "(channels, length)" if self.rank == 1 else "(channels, height, width)"
            raise ValueError(f"{self.describe()} takes inputs of shape {layout} with {self.in_channels} channels; "
                             f"it follows an output of shape {shape}")
        sizes = output_sizes(shape[1:], self.kernel_size, self.stride, self.dilation, self.pads(shape))
        if min(sizes) < 1:
            raise ValueError(f"{self.describe()}: kernel {'×'.join(map(str, self.kernel_size))} (dilation "
                             f"{'×'.join(map(str, self.dilation))}) is larger than its "
                             f"{'×'.join(map(str, shape[1:]))} input with its padding")
        return (self.out_channels, *sizes)

    def kept_values(self, output: Shape, given: Shape) -> int:
        return math.prod(output[1:]) * self.in_channels // self.groups * math.prod(self.kernel_size)  # the windows

    # ---- NumPy: im2col (a strided view, one copy), a matrix product per group; the backward's scatter ----

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        return self.forward_padded(params, x, self.pads(x.shape[1:]))

    def forward_padded(self, params: Mapping[str, np.ndarray], x: np.ndarray, pads: Pads) -> tuple[np.ndarray, Any]:
        """The forward with `pads` instead of the layer's own: what explain tries when a port pads otherwise."""
        xp = padded(x, pads)
        view = windows(xp, self.kernel_size, self.stride, self.dilation)  # (N, C, *O, *K)
        n, out = len(x), view.shape[2:2 + self.rank]
        g, per_group = self.groups, self.in_channels // self.groups
        positions = math.prod(out)
        # (G, N·positions, C/g·prod(K)): one row per output position, what the kernel sees there
        moved = view.reshape(n, g, per_group, *out, *self.kernel_size)
        order = (1, 0, *range(3, 3 + self.rank), 2, *range(3 + self.rank, 3 + 2 * self.rank))
        cols = np.ascontiguousarray(moved.transpose(order)).reshape(g, n * positions, -1)
        kernels = params["weight"].reshape(g, self.out_channels // g, -1)  # (G, O/g, C/g·prod(K))
        z = np.matmul(cols, kernels.transpose(0, 2, 1))  # (G, N·positions, O/g)
        z = z.reshape(g, n, positions, -1).transpose(1, 0, 3, 2).reshape(n, self.out_channels, *out)
        if self.bias:
            z += params["bias"].reshape(-1, *(1,) * self.rank)
        return np.ascontiguousarray(z), (cols, xp.shape, pads, out)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        cols, padded_shape, pads, out = saved
        g, n = self.groups, len(grad)
        rows = grad.reshape(n, g, self.out_channels // g, -1).transpose(1, 0, 3, 2).reshape(g, cols.shape[1], -1)
        kernels = params["weight"].reshape(g, self.out_channels // g, -1)
        grads = {"weight": np.matmul(rows.transpose(0, 2, 1), cols).reshape(params["weight"].shape)}
        if self.bias:
            grads["bias"] = grad.sum(axis=(0, *range(2, 2 + self.rank)))
        if not need_input_grad:
            return None, grads
        per_group = self.in_channels // g
        d_cols = np.matmul(rows, kernels).reshape(g, n, *out, per_group, *self.kernel_size)
        order = (1, 0, 2 + self.rank, *range(2, 2 + self.rank), *range(3 + self.rank, 3 + 2 * self.rank))
        per_offset = d_cols.transpose(order).reshape(n, self.in_channels, *out, *self.kernel_size)
        d_padded = scatter_windows(per_offset, padded_shape, self.stride, self.dilation)
        return unpadded(d_padded, pads), grads

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        bound = 1.0 / np.sqrt(self.in_channels // self.groups * math.prod(self.kernel_size))  # U(±1/√fan_in)
        for value in params.values():
            value[...] = rng.uniform(-bound, bound, size=value.shape)


@dataclass(frozen=True)
class Conv2d(Conv):
    rank: ClassVar[int] = 2
    kind: ClassVar[str] = "conv2d"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchConv, "mxnet": GluonConv, "jax": NnxConv2d, "tensorflow": KerasConv2d}

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Input((2, 5, 5)), Conv2d(2, 2, 3, stride=2, padding="same"), Flatten(), Linear(18, 1)],
                [Input((2, 4, 5)), Conv2d(2, 4, (2, 3), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
                 Flatten(), Linear(4 * 5 * 1, 1)],
                [Input((1, 4, 4)), Conv2d(1, 2, 2, padding="same"), Flatten(), Linear(32, 1)]]


@dataclass(frozen=True)
class Conv1d(Conv):
    rank: ClassVar[int] = 1
    kind: ClassVar[str] = "conv1d"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchConv, "mxnet": GluonConv, "jax": NnxConv1d, "tensorflow": KerasConv1d}

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Input((2, 7)), Conv1d(2, 3, 3, stride=2, padding="same"), Flatten(), Linear(12, 1)],
                [Input((2, 6)), Conv1d(2, 2, 2, padding=1, dilation=2, groups=2), Flatten(), Linear(12, 1)],
                [Input((1, 6)), Conv1d(1, 2, 3, stride=2, padding="same"), Flatten(), Linear(6, 1)]]

