"""Embedding: token ids (integers 0…vocabulary−1, carried as the model's float dtype like every input) to rows
of a (vocabulary, width) table. It takes the model's input directly, and the ids are checked where they cross
the boundary: an id out of range is a one-line error naming its position. The frameworks part there (measured,
an id 5 in a table of 3): torch raises IndexError, Keras's TensorFlow gather raises InvalidArgumentError, Gluon
clips it to the last row (and −1 to the first) and Flax's nnx.Embed returns NaN for it, silently both.

Each framework's own layer: torch nn.Embedding (int64 ids), Gluon nn.Embedding (float ids), Flax nnx.Embed
(int32 ids), Keras Embedding (it casts to int32 itself); the table is (vocabulary, width) in every one. Their
default initialisers differ: torch N(0, 1), Flax N(0, 1/width) (variance_scaling(1, fan_in, normal, out_axis=0),
flax/nnx/nn/linear.py:1149), Keras U(±0.05), Gluon its model's default initialiser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer


def _check(layer: Layer) -> Embedding:
    assert isinstance(layer, Embedding)
    return layer


@cache
def _torch_module() -> type:
    from torch import nn

    class Ids(nn.Module):
        """nn.Embedding of the ids as int64, which it takes."""

        def __init__(self, inner: nn.Embedding) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x.long())

    return Ids


class TorchEmbedding(Translator):
    native_default = "nn.Embedding: N(0, 1)"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("inner.weight")}

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        table = _check(layer)
        return _torch_module()(nn.Embedding(table.vocabulary, table.width))

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        native.inner.reset_parameters()


class GluonEmbedding(Translator):
    native_default = "gluon.nn.Embedding: the model's default initialiser"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("weight")}

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        table = _check(layer)
        return gluon.nn.Embedding(table.vocabulary, table.width, dtype=build.dtype)


@cache
def _nnx_module() -> type:
    import jax.numpy as jnp
    from flax import nnx

    class Ids(nnx.Module):
        """nnx.Embed of the ids as int32, which it takes."""

        def __init__(self, inner: nnx.Embed) -> None:
            self.inner = inner

        def __call__(self, x: Any) -> Any:
            return self.inner(x.astype(jnp.int32))

    return Ids


class NnxEmbedding(Translator):
    native_default = "nnx.Embed: default_embed_init, N(0, 1/width)"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("inner.embedding")}

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        table = _check(layer)
        return _nnx_module()(nnx.Embed(table.vocabulary, table.width, dtype=build.dtype, param_dtype=build.params_in,
                                       rngs=build.rngs))


class KerasEmbedding(Translator):
    native_default = "keras.layers.Embedding: U(±0.05)"
    links: ClassVar[Mapping[str, Link]] = {"weight": Link("embeddings")}

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        table = _check(layer)
        return keras.layers.Embedding(table.vocabulary, table.width, dtype=build.dtype)

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        import keras

        native.embeddings.assign(keras.initializers.RandomUniform(-0.05, 0.05, seed=draws)(native.embeddings.shape,
                                                                                          dtype))


@dataclass(frozen=True)
class Embedding(Layer):
    """Row x of weight (vocabulary, width) for each token id x of the input."""

    vocabulary: int
    width: int

    kind: ClassVar[str] = "embedding"
    takes_ids: ClassVar[bool] = True
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchEmbedding, "mxnet": GluonEmbedding, "jax": NnxEmbedding, "tensorflow": KerasEmbedding}

    def __post_init__(self) -> None:
        positive_integer("Embedding", "vocabulary", self.vocabulary)
        positive_integer("Embedding", "width", self.width)

    def describe(self) -> str:
        return f"embedding({self.vocabulary}, {self.width})"

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear
        from .recurrent import LSTM
        from .shape import Flatten, Input

        return [[Input((4,)), Embedding(6, 3), Flatten(), Linear(12, 2)],
                [Input((5,)), Embedding(7, 3), LSTM(3, 4, bias="input"), Linear(4, 1)]]

    def params(self) -> dict[str, Shape]:
        return {"weight": (self.vocabulary, self.width)}

    def output_shape(self, shape: Shape) -> Shape:
        return (*shape, self.width)

    def check_input(self, X: np.ndarray, where: str) -> None:
        bad = (np.floor(X) != X) | (X < 0) | (self.vocabulary <= X)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"X must hold token ids 0 to {self.vocabulary - 1} for {where} {self.describe()}; "
                             f"received {X[at]!r} at row {at[0]}, position {', '.join(map(str, at[1:]))}")

    def example_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return rng.integers(0, self.vocabulary, size=shape).astype(np.float64)

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        ids = x.astype(np.intp)
        return params["weight"][ids], ids

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        table = np.zeros_like(params["weight"])
        np.add.at(table, saved, grad)  # an id used twice gets both rows' gradients
        # ids are not differentiable: their gradient is zero (the layer takes the model's input directly)
        return (np.zeros(saved.shape, dtype=grad.dtype) if need_input_grad else None), {"weight": table}

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        params["weight"][...] = rng.standard_normal(params["weight"].shape)  # torch's N(0, 1)
