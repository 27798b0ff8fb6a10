"""The layers' non-trainable state (batch normalisation's running statistics) across the backend boundary:
canonical names ("{index}.running_mean") and layouts, as the layers declare them (`Layer.state()`).

Training steps update it; evaluation (loss, predict) reads it; `loss_and_grads` computes in training mode
but leaves it as it was. New parameters (set_params, native_init) start it again from the layers' initial
values, as they start the optimiser again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from ..layers import Layer, ModelSpec
from .arguments import named_arrays

Params = dict[str, np.ndarray]


def initial_state(spec: ModelSpec) -> Params:
    """Every stateful layer's starting values, by canonical name."""
    return {f"{index}.{name}": value for index, layer in enumerate(spec)
            for name, value in layer.initial_state().items()}


def keeps_state(layer: Layer | type[Layer]) -> bool:
    """Whether the layer (or its type) has non-trainable state."""
    return bool(layer.state()) if isinstance(layer, Layer) else layer.state is not Layer.state


class LayerState:
    """What Backend adds for stateful layers; a backend that keeps them declares `keeps_state` and
    implements the two hooks."""

    keeps_state: ClassVar[bool] = False  # whether _get_state and _set_state are implemented
    spec: ModelSpec
    dtype: str
    _state_shapes: dict[str, tuple[int, ...]]

    def get_state(self) -> Params:
        """The layers' state (running statistics), canonical names and layout; {} for a model without."""
        if not self._state_shapes:
            return {}
        return {name: np.array(value, dtype=self.dtype) for name, value in self._get_state().items()}

    def set_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Load the layers' state, given in the canonical layout (get_state's keys exactly)."""
        checked = named_arrays("state", state, self._state_shapes, self.dtype)
        if checked:
            self._set_state(checked)

    def _restart_state(self) -> None:
        if self._state_shapes:
            self.set_state(initial_state(self.spec))

    def _get_state(self) -> Mapping[str, Any]:
        """The state by canonical name, anything np.array accepts."""
        raise NotImplementedError(f"{type(self).__name__} keeps no layer state")

    def _set_state(self, state: Params) -> None:
        """Overwrite the state from checked arrays of self.dtype."""
        raise NotImplementedError(f"{type(self).__name__} keeps no layer state")
