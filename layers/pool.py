"""Max and average pooling over the two spatial axes of (batch, channels, height, width) inputs:

- padding: torch and Gluon pad both sides by a number (max: with −∞; torch refuses more than half the
  kernel: so does the canonical layer), Flax takes the same pairs (its max_pool pads with −∞, its avg_pool
  with zeros), Keras's pooling layers pad only as "same": a number is refused there by name;
- count_include_pad (average): whether padded zeros count in the divisor. torch, Gluon and Flax take it
  (all True by default); Keras has no padding to count;
- the stride defaults to the kernel size everywhere;
- ceil_mode: ⌈(n + 2p − k)/s⌉ + 1 windows instead of ⌊…⌋ + 1, the last one hanging over the end. torch drops a
  last window that would start in the right padding (aten/src/ATen/native/Pool.h, pooling_output_shape_pad_lr:
  "ensure that the last pooling starts inside the image"); Gluon's ceil_mode (pooling_convention="full") keeps
  it (src/operator/nn/pooling.cc, PoolingShape: ceil((x+2*p-k)/s)+1, nothing dropped), so it gives one output
  more there: refused for those sizes, by name. The canonical layer is torch's: the overhang is extra padding
  after (max: −∞; average: counted in no divisor, as torch's and Gluon's kernels count only the window inside
  the padded input). Flax takes the overhang as padding (max_pool: −∞, exact; avg_pool counts it with
  count_include_pad=True: refused where there is an overhang, aligned without). Keras has no ceil_mode: refused
  where it changes anything.

No parameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Shape, Translator
from .windows import Pads, output_sizes, padded, per_axis, scatter_windows, unpadded, windows
from .wrappers import keras_channels_last, nnx_channels_last

_NO_DILATION = (1, 1)


def _pool(layer: Layer) -> Pool:
    assert isinstance(layer, Pool)
    return layer


def _average_options(pool: Pool) -> dict[str, Any]:
    return {"count_include_pad": pool.count_include_pad} if isinstance(pool, AvgPool2d) else {}


class TorchPool(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        pool = _pool(layer)
        kind = nn.AvgPool2d if isinstance(pool, AvgPool2d) else nn.MaxPool2d
        return kind(pool.kernel_size, stride=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode,
                    **_average_options(pool))


class GluonPool(Translator):
    def refuses_input(self, layer: Layer, shape: Shape) -> str | None:
        pool = _pool(layer)
        if not pool.ceil_mode:
            return None
        theirs = tuple(-(-(n + 2 * p - k) // s) + 1 for n, k, s, p
                       in zip(shape[1:], pool.kernel_size, pool.stride, pool.padding, strict=True))
        ours = pool.output_shape(shape)[1:]
        if theirs != ours:
            return (f"Gluon's ceil_mode keeps a last window that starts in the padding, giving "
                    f"{'×'.join(map(str, theirs))} outputs where torch gives {'×'.join(map(str, ours))} "
                    "(src/operator/nn/pooling.cc): give other sizes, or ceil_mode=False")
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        pool = _pool(layer)
        kind = gluon.nn.AvgPool2D if isinstance(pool, AvgPool2d) else gluon.nn.MaxPool2D
        return kind(pool.kernel_size, strides=pool.stride, padding=pool.padding, ceil_mode=pool.ceil_mode,
                    **_average_options(pool))


class NnxPool(Translator):
    def refuses_input(self, layer: Layer, shape: Shape) -> str | None:
        pool = _pool(layer)
        if isinstance(pool, AvgPool2d) and pool.count_include_pad and pool.overhangs(shape):
            return ("nnx.avg_pool with count_include_pad=True divides by the whole window, the ceil_mode overhang "
                    "too, where torch counts only the padded input: give count_include_pad=False or other sizes")
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        pool = _pool(layer)
        function = nnx.avg_pool if isinstance(pool, AvgPool2d) else nnx.max_pool
        return nnx_channels_last(functools.partial(function, window_shape=pool.kernel_size, strides=pool.stride,
                                                   padding=pool.pads(build.shape), **_average_options(pool)), 2)


class KerasPool(Translator):
    def refuses(self, layer: Layer) -> str | None:
        if max(_pool(layer).padding):
            return ("keras.layers.MaxPooling2D and AveragePooling2D pad only as 'same', not by a number: give "
                    "padding=0")
        return None

    def refuses_input(self, layer: Layer, shape: Shape) -> str | None:
        if _pool(layer).overhangs(shape):
            return "keras.layers.MaxPooling2D and AveragePooling2D have no ceil_mode: give ceil_mode=False"
        return None

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        pool = _pool(layer)
        kind = keras.layers.AveragePooling2D if isinstance(pool, AvgPool2d) else keras.layers.MaxPooling2D
        return keras_channels_last(kind(pool.kernel_size, strides=pool.stride, dtype=build.dtype), 2)


@dataclass(frozen=True)
class Pool(Layer):
    kernel_size: Any
    stride: Any = None  # None: the kernel size
    padding: Any = 0
    ceil_mode: bool = False  # torch's: ⌈⌉ windows, the last one kept only where it starts inside the input

    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchPool, "mxnet": GluonPool, "jax": NnxPool, "tensorflow": KerasPool}

    def __post_init__(self) -> None:
        name = self.kind
        kernel = per_axis(name, "kernel_size", self.kernel_size, 2)
        object.__setattr__(self, "kernel_size", kernel)
        object.__setattr__(self, "stride", per_axis(name, "stride", kernel if self.stride is None else self.stride, 2))
        padding = per_axis(name, "padding", self.padding, 2, minimum=0)
        if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
            raise ValueError(f"{name} padding must be at most half the kernel size {'×'.join(map(str, kernel))} "
                             f"(a window would see padding only); received: {self.padding!r}")
        object.__setattr__(self, "padding", padding)
        if not isinstance(self.ceil_mode, bool):
            raise ValueError(f"{name} ceil_mode must be True or False; received: {self.ceil_mode!r}")

    def _options(self) -> list[str]:
        def axes(value: tuple[int, ...]) -> str:
            return str(value[0]) if len(set(value)) == 1 else str(value)

        return [axes(self.kernel_size), f"stride={axes(self.stride)}" if self.stride != self.kernel_size else "",
                f"padding={axes(self.padding)}" if max(self.padding) else "",
                "ceil_mode=True" if self.ceil_mode else ""]

    def describe(self) -> str:
        return f"{self.kind}({', '.join(part for part in self._options() if part)})"

    def encode(self) -> Any:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                **({"ceil_mode": True} if self.ceil_mode else {})}

    @classmethod
    def decode(cls, options: Any) -> Layer:
        given: dict[str, Any] = {key: tuple(value) if isinstance(value, list) else value
                                 for key, value in options.items()}
        return cls(**given)

    def _sizes(self, sizes: Shape) -> Shape:
        """Windows per spatial axis of an input of `sizes`: ⌊⌋, or ⌈⌉ (ceil_mode) less a last window that would
        start in the right padding, as torch counts them."""
        floor = output_sizes(sizes, self.kernel_size, self.stride, _NO_DILATION, tuple((p, p) for p in self.padding))
        if not self.ceil_mode:
            return floor
        return tuple(out + 1 if out >= 1 and (n + 2 * p - k) % s and out * s < n + p else out
                     for out, n, k, s, p in zip(floor, sizes, self.kernel_size, self.stride, self.padding, strict=True))

    def pads(self, shape: Shape) -> Pads:
        """The padding before and after each spatial axis of an input of one example's `shape`: the padding, and
        after it the overhang of ceil_mode's last window."""
        axes = zip(self._sizes(shape[1:]), shape[1:], self.kernel_size, self.stride, self.padding, strict=True)
        return tuple((p, p + max(0, (out - 1) * s + k - n - 2 * p)) for out, n, k, s, p in axes)

    def overhangs(self, shape: Shape) -> bool:
        """Whether ceil_mode's last window hangs over the padded input (it then changes the output)."""
        return any(after > before for before, after in self.pads(shape))

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise ValueError(f"{self.describe()} takes inputs of shape (channels, height, width); "
                             f"it follows an output of shape {shape}")
        sizes = self._sizes(shape[1:])
        if min(sizes) < 1:
            raise ValueError(f"{self.describe()}: kernel {'×'.join(map(str, self.kernel_size))} is larger than its "
                             f"{'×'.join(map(str, shape[1:]))} input")
        return (shape[0], *sizes)

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .conv import Conv2d
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Input((1, 4, 5)), Conv2d(1, 2, 2), cls(2, stride=1), Flatten(), Linear(2 * 2 * 3, 1)],
                [Input((1, 5, 5)), Conv2d(1, 1, 1), cls(3, stride=2, padding=1), Flatten(), Linear(9, 1)],
                [Input((1, 5, 6)), Conv2d(1, 2, 1), cls((2, 3), stride=2, ceil_mode=True), Flatten(),
                 Linear(2 * 3 * 3, 1)]]


@dataclass(frozen=True)
class MaxPool2d(Pool):
    """The largest value of each window (padding counts as −∞); the gradient goes to the first largest."""

    kind: ClassVar[str] = "maxpool"

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        pads = self.pads(x.shape[1:])
        xp = padded(x, pads, -np.inf)
        view = windows(xp, self.kernel_size, self.stride, _NO_DILATION)
        flat = view.reshape(*view.shape[:4], -1)
        first = flat.argmax(axis=-1)[..., None]  # the first largest, in row-major order, as torch's kernel
        return np.take_along_axis(flat, first, axis=-1)[..., 0], (first, xp.shape, pads)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        first, padded_shape, pads = saved
        per_offset = np.zeros((*grad.shape, math.prod(self.kernel_size)), dtype=grad.dtype)
        np.put_along_axis(per_offset, first, grad[..., None], axis=-1)
        spread = scatter_windows(per_offset.reshape(*grad.shape, *self.kernel_size), padded_shape, self.stride,
                                 _NO_DILATION)
        return unpadded(spread, pads), {}


@dataclass(frozen=True)
class AvgPool2d(Pool):
    """The mean of each window; with count_include_pad=False the padded zeros do not count in the divisor."""

    count_include_pad: bool = True

    kind: ClassVar[str] = "avgpool"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.count_include_pad, bool):
            raise ValueError(f"avgpool count_include_pad must be True or False; received: {self.count_include_pad!r}")

    def _options(self) -> list[str]:
        return [*super()._options(), "" if self.count_include_pad else "count_include_pad=False"]

    def encode(self) -> Any:
        return {**super().encode(), "count_include_pad": self.count_include_pad}

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .conv import Conv2d
        from .linear import Linear
        from .shape import Flatten, Input

        return [*super().examples(), [Input((1, 5, 5)), Conv2d(1, 1, 1), cls(3, stride=2, padding=1,
                                                                          count_include_pad=False),
                                      Flatten(), Linear(9, 1)],
                [Input((1, 6, 6)), Conv2d(1, 1, 1), cls(3, stride=2, padding=1, ceil_mode=True,
                                                        count_include_pad=False), Flatten(), Linear(16, 1)]]

    def _divisor(self, shape: Shape) -> np.ndarray | float:
        """Per window, the values it averages: the whole kernel, or (count_include_pad=False, or a ceil_mode
        overhang) those inside the input, and the padding where it counts; never the overhang (torch's count)."""
        if (self.count_include_pad or not max(self.padding)) and not self.overhangs(shape):
            return float(math.prod(self.kernel_size))
        counted = padded(np.ones((1, 1, *shape[1:])), tuple((p, p) for p in self.padding),
                         1.0 if self.count_include_pad else 0.0)
        counted = padded(counted, tuple((0, after - before) for before, after in self.pads(shape)))
        return windows(counted, self.kernel_size, self.stride, _NO_DILATION).sum(axis=(-2, -1))[0, 0]

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        pads = self.pads(x.shape[1:])
        xp = padded(x, pads)
        divisor = self._divisor(x.shape[1:])
        return windows(xp, self.kernel_size, self.stride, _NO_DILATION).sum(axis=(-2, -1)) / divisor, (xp.shape,
                                                                                                       divisor, pads)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        padded_shape, divisor, pads = saved
        share = np.broadcast_to((grad / divisor)[..., None, None], (*grad.shape, *self.kernel_size))
        return unpadded(scatter_windows(share, padded_shape, self.stride, _NO_DILATION), pads), {}
