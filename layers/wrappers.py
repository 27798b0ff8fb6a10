"""Small framework modules that hold one framework layer and adapt its input, so that every layer of a model
takes and gives the canonical layout (batch, channels, *spatial) in every framework:

- `torch_padded`, `gluon_padded`: zero padding the framework's layer cannot take itself (an odd total,
  more after than before: "same" with stride > 1 or an even kernel), with the framework's own pad op;
- `keras_channels_last`, `nnx_channels_last`: Keras's and Flax's convolution and pooling work on channels-last
  data (Keras's `channels_first` convolution fails in float64 on a CPU: TensorFlow's Eigen kernel takes
  NHWC only), so the input is transposed in and the output back. Compiled steps fuse the transposes of
  neighbouring layers away; layer-by-layer outputs (explain) stay comparable across frameworks.

The wrapped layer is the attribute `inner`: a translator's links say "inner.weight". Each factory imports
its framework when first called.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from .windows import Pads


def has_padding(pads: Pads) -> bool:
    return any(before or after for before, after in pads)


def to_last(rank: int) -> tuple[int, ...]:
    """The axes permutation (batch, channels, *spatial) → (batch, *spatial, channels)."""
    return (0, *range(2, rank + 2), 1)


def to_first(rank: int) -> tuple[int, ...]:
    return (0, rank + 1, *range(1, rank + 1))


@cache
def _torch_padded() -> type:
    import torch
    from torch import nn

    class Padded(nn.Module):
        """torch.nn.functional.pad, then the layer."""

        def __init__(self, pad: tuple[int, ...], inner: nn.Module) -> None:
            super().__init__()
            self.pad, self.inner = pad, inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(nn.functional.pad(x, self.pad) if self.pad else x)

    return Padded


def torch_padded(pads: Pads, inner: Any) -> Any:
    """inner after zero padding by `pads` (none: inner as it is, in the same wrapper)."""
    # F.pad lists the last axis first: (left, right, top, bottom)
    flat = tuple(side for before_after in reversed(pads) for side in before_after) if has_padding(pads) else ()
    return _torch_padded()(flat, inner)


@cache
def _gluon_padded() -> type:
    from mxnet import gluon

    class Padded(gluon.HybridBlock):
        """F.pad (constant zeros; it takes 4-D and 5-D arrays: a 1-D input goes through as (N, C, 1, L)), then
        the layer."""

        def __init__(self, pads: Pads, inner: Any) -> None:
            super().__init__()
            self._pads = pads if has_padding(pads) else ()
            with self.name_scope():
                self.inner = inner

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            if self._pads:
                flat_pads = tuple(side for pair in self._pads for side in pair)
                if len(self._pads) == 1:
                    x = F.reshape(F.pad(F.expand_dims(x, axis=2), mode="constant", constant_value=0,
                                        pad_width=(0, 0, 0, 0, 0, 0, *flat_pads)), shape=(0, 0, -1))
                else:
                    x = F.pad(x, mode="constant", constant_value=0, pad_width=(0, 0, 0, 0, *flat_pads))
            return self.inner(x)

    return Padded


def gluon_padded(pads: Pads, inner: Any) -> Any:
    return _gluon_padded()(pads, inner)


@cache
def _keras_channels_last() -> type:
    import keras

    class ChannelsLast(keras.layers.Layer):
        """Transpose to channels-last, (zero padding,) the Keras layer, transpose back."""

        def __init__(self, inner: Any, rank: int, before: Any = None, **kwargs: Any) -> None:
            super().__init__(dtype=inner.dtype_policy, **kwargs)
            self.inner, self.before, self.rank = inner, before, rank

        def call(self, x: Any) -> Any:
            x = keras.ops.transpose(x, to_last(self.rank))
            if self.before is not None:
                x = self.before(x)
            return keras.ops.transpose(self.inner(x), to_first(self.rank))

    return ChannelsLast


def keras_channels_last(inner: Any, rank: int, pads: Pads = ()) -> Any:
    """inner on canonical data; explicit `pads` through Keras's ZeroPadding1D/2D first."""
    import keras

    before = None
    if has_padding(pads):
        padding = pads[0] if rank == 1 else pads
        before = (keras.layers.ZeroPadding1D if rank == 1 else keras.layers.ZeroPadding2D)(padding,
                                                                                            dtype=inner.dtype_policy)
    return _keras_channels_last()(inner, rank, before)


@cache
def _nnx_channels_last() -> type:
    import jax.numpy as jnp
    from flax import nnx

    class ChannelsLast(nnx.Module):
        """Transpose to channels-last, the Flax layer (or function), transpose back."""

        def __init__(self, inner: Any, rank: int) -> None:
            self.inner, self.rank = inner, rank

        def __call__(self, x: Any) -> Any:
            return jnp.transpose(self.inner(jnp.transpose(x, to_last(self.rank))), to_first(self.rank))

    return ChannelsLast


def nnx_channels_last(inner: Any, rank: int) -> Any:
    return _nnx_channels_last()(inner, rank)

