"""Sliding windows over the spatial axes of (batch, channels, *spatial) arrays, for the NumPy forward and
backward of convolution and pooling: strided views (no copy until a layer reshapes them), and the scatter
back that a backward pass needs, one Python iteration per kernel offset (never per pixel).

Padding is given per spatial axis as (before, after). "same" follows TensorFlow and JAX: the output has
⌈size / stride⌉ positions, and when the padding it needs is odd the extra row or column goes after
(bottom, right) — which is also what torch's padding="same" does for stride 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Pads = tuple[tuple[int, int], ...]
PADDING_WORDS = ("same", "valid")


def per_axis(layer: str, option: str, value: Any, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """An option given as one integer or one per spatial axis, as a tuple of `rank` integers ≥ minimum."""
    values = (value,) * rank if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(values, tuple | list) or len(values) != rank
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in values)):
        allowed = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{layer} {option} must be {allowed} or {rank} of them; received: {value!r}")
    return tuple(values)


def effective(kernel: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    """The span a dilated kernel covers: d·(k − 1) + 1 per axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))


def same_pads(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int]) -> Pads:
    """TensorFlow's "SAME": ⌈n / s⌉ outputs, the padding split with the odd one after."""
    pads = []
    for n, span, s in zip(sizes, effective(kernel, dilation), stride, strict=True):
        total = max((-(-n // s) - 1) * s + span - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def output_sizes(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                 pads: Pads) -> tuple[int, ...]:
    """⌊(n + before + after − span) / s⌋ + 1 per axis (≤ 0 when the window does not fit)."""
    return tuple((n + before + after - span) // s + 1 for n, span, s, (before, after)
                 in zip(sizes, effective(kernel, dilation), stride, pads, strict=True))


def padded(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """x with its spatial axes padded by `value` (x itself when there is nothing to pad)."""
    if not any(before or after for before, after in pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=value)


def windows(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """A read-only view (batch, channels, *out, *kernel) of every window of the (already padded) x."""
    rank = len(kernel)
    spans = effective(kernel, dilation)
    view = np.lib.stride_tricks.sliding_window_view(x, spans, axis=tuple(range(2, 2 + rank)))  # type: ignore[call-overload]
    outer = tuple(slice(None, None, s) for s in stride)
    inner = tuple(slice(None, None, d) for d in dilation)
    return view[(slice(None), slice(None), *outer, *inner)]


def scatter_windows(per_offset: np.ndarray, shape: Sequence[int], stride: Sequence[int],
                    dilation: Sequence[int]) -> np.ndarray:
    """windows' adjoint: per_offset (batch, channels, *out, *kernel) summed back into an array of the padded
    input's `shape`, each kernel offset's plane added where that offset read."""
    rank = len(stride)
    out, kernel = per_offset.shape[2:2 + rank], per_offset.shape[2 + rank:]
    found = np.zeros(shape, dtype=per_offset.dtype)
    for offset in np.ndindex(*kernel):
        target = tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                       for k, d, s, o in zip(offset, dilation, stride, out, strict=True))
        found[(slice(None), slice(None), *target)] += per_offset[(Ellipsis, *offset)]  # type: ignore[arg-type]
    return found


def unpadded(x: np.ndarray, pads: Pads) -> np.ndarray:
    """padded's inverse on an array of the padded shape."""
    return x[(slice(None), slice(None), *(slice(before, x.shape[2 + axis] - after)
                                          for axis, (before, after) in enumerate(pads)))]
