"""What a backend reports of how it computed: the dtype each layer's output had, the loss scale after each step of a
float16 run, and the math modes its framework has in force (the Backend's mixin)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

# What math_modes reports: each framework's switch for it, or why it has none.
MODES = ("device", "TF32 matmul", "TF32 convolution", "deterministic", "autotune")


def on(value: bool) -> str:
    return "on" if value else "off"


class NumericsRecord:
    """Kept by each backend as it trains; read by the reports."""

    _scales: list[float]
    _computed_in: list[str]

    def _restart_record(self) -> None:
        self._scales, self._computed_in = [], []

    @property
    def loss_scales_(self) -> np.ndarray:
        """With dynamic loss scaling (mixed-float16): the scale after each optimiser step since the parameters were
        last set, as the framework's scaler holds it (a fall: a step skipped for a gradient that overflowed)."""
        return np.array(self._scales, dtype=np.float64)

    def computed_in(self, X: np.ndarray) -> list[str]:
        """The dtype of each layer's output in a training forward of X, as the framework computed it (its mixed
        policy decides which layers run low): 'bfloat16', 'float32', …"""
        self.forward_activations(X)  # which records them
        if len(self._computed_in) != len(self.spec):
            raise NotImplementedError(f"backend {self.name!r} does not record the dtype of its layers' outputs")
        return list(self._computed_in)

    def math_modes(self) -> dict[str, str]:
        """Where it runs and the framework's switches that change float32 arithmetic, as they stand (MODES)."""
        return {"device": self.device, **{mode: "-" for mode in MODES[1:]}}

    # what the Backend provides
    spec: Any
    name: ClassVar[str]
    device: str

    def forward_activations(self, X: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError
