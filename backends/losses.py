"""The losses a backend trains with and the checks of their options and targets, each a one-line ValueError
naming the argument, the value received and what is allowed.

Every loss is the task's definition, averaged over the batch:
mse = mean (ŷ−y)², half-mse = ½·mse, huber = mean of ½x² (|x| ≤ δ) or δ(|x| − ½δ), l1 = mean |ŷ−y|;
bce-with-logits = mean of max(ŷ, 0) − ŷ·y + log(1 + e^−|ŷ|), ŷ a logit and y a probability from 0 to 1;
cross-entropy = mean of −log softmax(ŷ)[label], ŷ the logits (one output per class) and y the class
indices 0…K−1, shape (n,) or (n, 1), held as (n, 1) of the model's dtype; with label_smoothing ε, the mean of
−Σₖ qₖ log softmax(ŷ)ₖ with q = (1 − ε)·one-hot + ε/K (torch's, every class including the label's); with
class_weights w, Σ w[yₙ]·lₙ / Σ w[yₙ] over the batch (torch's weighted mean); each
backend turns the labels into what its framework's loss takes (torch int64, JAX int32; Gluon and Keras take
them as they are).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .arguments import as_dtype, finite, real_array, representable, scalar

REGRESSION_LOSSES = ("mse", "half-mse", "huber", "l1")  # y has the output's shape
BINARY_LOSSES = ("bce-with-logits",)  # y has the output's shape, each value a probability from 0 to 1
CLASSIFICATION_LOSSES = ("cross-entropy",)  # the model's outputs are class logits, y holds class indices
LOSSES = REGRESSION_LOSSES + BINARY_LOSSES + CLASSIFICATION_LOSSES


def label_smoothing_of(value: Any, loss: str) -> float:
    """ε of (1 − ε)·one-hot + ε/K, from 0 up to (not including) 1, for cross-entropy only."""
    smoothing = finite("label_smoothing", value, zero_allowed=True)
    if smoothing >= 1:
        raise ValueError(f"label_smoothing must be below 1 (1 spreads every label evenly over the classes); "
                         f"received: {value!r}")
    if smoothing and loss != "cross-entropy":
        raise ValueError(f"label_smoothing applies to loss cross-entropy, not {loss}; "
                         f"received: label_smoothing={value!r}")
    return smoothing


def class_weights_of(value: Sequence[float] | None, loss: str, classes: int, smoothing: float,
                     dtype: str) -> tuple[float, ...] | None:
    """One finite weight > 0 per class, for cross-entropy: torch's CrossEntropyLoss(weight=), the batch's weighted
    mean Σ w[yₙ]·lₙ / Σ w[yₙ]. Not with label smoothing, whose weighted form torch and Keras write differently
    (torch weights the smoothing term per class, torch/nn/modules/loss.py:1293-1296; Keras per example)."""
    if value is None:
        return None
    if loss != "cross-entropy":
        raise ValueError(f"class_weights applies to loss cross-entropy, not {loss}; received: class_weights={value!r}")
    if smoothing:
        raise ValueError("class_weights with label_smoothing: torch weights the smoothing term class by class, Keras "
                         "example by example; give one or the other")
    weights = [scalar(weight) for weight in (value if isinstance(value, Sequence | np.ndarray) else [value])]
    good = all(not isinstance(w, bool) and isinstance(w, int | float) and math.isfinite(w) and w > 0 for w in weights)
    if len(weights) != classes or not good:
        raise ValueError(f"class_weights must be {classes} finite numbers > 0, one per class; received: {value!r}")
    for weight in (*weights, sum(weights)):  # 1e39 is infinite in float32, and so would the batch's Σ w be
        representable("class_weights", float(weight), dtype)
    return tuple(float(weight) for weight in weights)


def checked_targets(y: np.ndarray, n: int, loss: str, n_out: int, dtype: str) -> np.ndarray:
    """y as `loss` takes it for n rows of a model of n_out outputs, contiguous, of the model's dtype: class indices
    0…K−1 as (n, 1) for cross-entropy; else the output's shape, probabilities from 0 to 1 for bce-with-logits."""
    if loss in CLASSIFICATION_LOSSES:
        return _class_indices(y, n, n_out, dtype)
    y = as_dtype("y", real_array("y", y), dtype)
    if y.ndim == 1 and n_out == 1:
        y = y[:, None]
    if y.shape != (n, n_out):
        raise ValueError(f"y must have shape ({n}, {n_out}) to match X; received shape {y.shape}")
    if loss in BINARY_LOSSES and (np.any(y < 0) or np.any(y > 1)):
        at = tuple(int(i) for i in np.argwhere((y < 0) | (y > 1))[0])
        raise ValueError(f"y must hold probabilities from 0 to 1 for loss {loss} (1 for the positive class); "
                         f"received {y[at]!r} at index {at}")
    return np.ascontiguousarray(y)


def _class_indices(y: np.ndarray, n: int, classes: int, dtype: str) -> np.ndarray:
    """Class indices 0…K−1, given as (n,) or (n, 1) integers (or floats holding integers), as (n, 1) of the
    model's dtype."""
    labels = real_array("y", y)
    if labels.shape not in ((n,), (n, 1)):
        raise ValueError(f"y must hold one class index per row of X, shape ({n},) or ({n}, 1); "
                         f"received shape {labels.shape}")
    bad = (labels != np.floor(labels)) | (labels < 0) | (labels >= classes)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"y must hold class indices 0 to {classes - 1} for a model with {classes} outputs; "
                         f"received {labels[where]} at index {where}")
    return np.ascontiguousarray(labels.reshape(n, 1), dtype=dtype)
