"""The masks of layers that drop values in training (dropout), across the backend boundary.

Each training step's masks are drawn in NumPy by the layers (`Dropout.keep_mask`: from the layer's seed, its
position and the step's number, counted from 0 since the parameters were last set), so every backend on the
same batches multiplies by the same masks; the framework's layer takes its mask as an input. After
native_init, each framework's own dropout draws them from its own random state instead (MaskTranslator).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..layers import Layer, MaskTranslator, ModelSpec, input_shapes
from ..layers.dropout import mask_seed


class DropoutMasks:
    """What Backend adds for layers that take masks; a backend hands `_keeps(rows)` to its training forward."""

    spec: ModelSpec
    dtype: str
    translator: ClassVar[Any]

    def _start_masks(self) -> None:
        shapes = input_shapes(self.spec)
        # (position, layer, its translator, one example's shape) per layer that takes a mask
        self._masked: list[tuple[int, Layer, MaskTranslator, tuple[int, ...]]] = [
            (index, layer, self._mask_translator(layer), shapes[index])
            for index, layer in enumerate(self.spec) if layer.takes_mask]
        self._mask_step = 0  # the step whose masks come next: the optimiser steps so far, counted as each runs
        self._mask_draws: Any = None  # the framework's random state, after native_init; None: shared masks

    def _mask_translator(self, layer: Layer) -> MaskTranslator:
        found = self.translator(layer)
        assert isinstance(found, MaskTranslator), f"{layer.kind} takes masks: its translators are MaskTranslators"
        return found

    @property
    def masked_layers(self) -> list[int]:
        """The positions of the layers that take a mask in training."""
        return [index for index, *_ in self._masked]

    def _masked_shapes(self) -> list[tuple[int, ...]]:
        """One example's shape at each layer that takes a mask, in order."""
        return [shape for *_, shape in self._masked]

    def _shared_masks(self) -> None:
        self._mask_draws = None

    def _native_masks(self, seed: int) -> None:
        if self._masked:
            self._mask_draws = self._masked[0][2].mask_draws(mask_seed(seed))

    def _keeps(self, rows: int, *, advance: bool = False) -> dict[int, Any]:
        """Each masked layer's mask by position, as the framework's arrays, for a training forward of `rows`
        examples: the step at hand's (between steps, the next one's); `advance`: a training step takes them, and
        the next call gets the step after."""
        if not self._masked:
            return {}
        step = self._mask_step
        if advance:
            self._mask_step += 1
        if self._mask_draws is not None:
            return {index: self._computed_mask(translator.native_mask(layer, self._mask_draws, (rows, *shape),
                                                                      self.dtype))
                    for index, layer, translator, shape in self._masked}
        return {index: self._computed_mask(translator.given_mask(layer.keep_mask(index, step, rows, shape, self.dtype)))
                for index, layer, translator, shape in self._masked}

    def _computed_mask(self, mask: Any) -> Any:
        """A mask in the dtype the layers compute in (bfloat16 or float16 where they do), so that it does not
        promote what it multiplies to float32: each framework's backend casts it."""
        return mask
