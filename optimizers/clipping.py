"""Gradient clipping: a short text (`--clip global-norm:1.0`), parsed once, and its canonical meaning, which
the NumPy backend computes by hand and each framework with its own clipping.

    global-norm:C   every gradient × min(1, C / ‖all gradients‖₂)  (torch clip_grad_norm_, optax
                    clip_by_global_norm, Keras global_clipnorm, Gluon clip_global_norm)
    norm:C          each parameter's gradient × min(1, C / ‖its gradient‖₂)  (Keras clipnorm)
    value:V         each element clipped to [−V, V]  (torch clip_grad_value_, optax clip, Keras clipvalue,
                    Gluon's clip_gradient)
The clip applies to the loss's gradient (the batch mean), before weight decay, as torch's clip before
optimizer.step() does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

CLIPS = ("global-norm", "norm", "value")
GRAMMAR = "global-norm:C | norm:C | value:V (C, V > 0)"


@dataclass(frozen=True)
class Clip:
    kind: str
    limit: float

    def text(self) -> str:
        return f"{self.kind}:{self.limit:g}"

    def apply(self, grads: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The clipped gradients (new arrays), the canonical formula."""
        if self.kind == "value":
            return {name: np.clip(grad, -self.limit, self.limit) for name, grad in grads.items()}
        if self.kind == "norm":
            return {name: grad * min(1.0, self.limit / norm) if (norm := float(np.linalg.norm(grad))) else grad.copy()
                    for name, grad in grads.items()}
        total = math.sqrt(sum(float(np.vdot(grad, grad)) for grad in grads.values()))
        scale = min(1.0, self.limit / total) if total else 1.0
        return {name: grad * scale for name, grad in grads.items()}


def parse(text: str, option: str = "--clip") -> Clip:
    """`text` as a Clip; a ValueError naming `option`, the text and what is allowed when it does not parse."""
    if not isinstance(text, str):
        raise ValueError(f"{option} must be a text such as global-norm:1.0; received: {text!r}")
    kind, colon, raw = text.strip().partition(":")
    if kind not in CLIPS or not colon:
        raise ValueError(f"{option} must be one of {GRAMMAR}; received: {text!r}")
    try:
        limit = float(raw)
    except ValueError:
        limit = math.nan
    if not math.isfinite(limit) or limit <= 0:
        raise ValueError(f"{option} {text!r}: the limit must be a finite number > 0; received {raw!r}")
    return Clip(kind, limit)
