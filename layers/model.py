"""A model: a sequence of layers, checked to fit together, with its canonical parameter and state names."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

from .activation import Activation
from .base import Build, Layer, Shape, Translator
from .batchnorm import BatchNorm
from .linear import Linear

DTYPES = ("float32", "float64")
BATCHNORM_VARIANCES = ("biased", "unbiased")  # what a BatchNorm's running variance keeps

ModelSpec = tuple[Layer, ...]


def make_spec(layers: Sequence[Layer]) -> ModelSpec:
    """Check that every layer fits the output of the one before and return the spec as a tuple."""
    spec = tuple(layers)
    for index, layer in enumerate(spec):
        if not isinstance(layer, Layer):
            raise ValueError(f"layer {index} must be a layer (backend_compare.layers); received: {layer!r}")
    if not any(layer.params() for layer in spec):
        raise ValueError("a model spec needs at least one layer with parameters; received none")
    for index, layer in enumerate(spec):
        if layer.takes_ids and any(before.kind != "input" for before in spec[:index]):
            raise ValueError(f"layer {index} {layer.describe()} takes token ids, the model's input: it must come "
                             "first")
    output_shape(spec)
    return spec


def input_shape(spec: ModelSpec) -> Shape:
    """One example's shape, as the first layer that fixes one fixes it (layers before it keep the shape)."""
    for layer in spec:
        shape = layer.input_shape()
        if shape is not None:
            return shape
    raise ValueError(f"no layer of the model fixes its input shape: {', '.join(layer.describe() for layer in spec)}")


def output_shape(spec: ModelSpec) -> Shape:
    """One example's output shape; a ValueError names the first layer that does not fit its input."""
    shape = input_shape(spec)
    for index, layer in enumerate(spec):
        try:
            shape = layer.output_shape(shape)
        except ValueError as err:
            raise ValueError(f"layer {index} {err}") from None
    return shape


def input_shapes(spec: ModelSpec) -> list[Shape]:
    """The shape of one example of each layer's input, in order."""
    shapes = [input_shape(spec)]
    for layer in spec[:-1]:
        shapes.append(layer.output_shape(shapes[-1]))
    return shapes


def built(translators: Sequence[Translator], spec: ModelSpec, build: Build) -> list[Any]:
    """Each layer as its framework's translator builds it, told the shape of the layer's input."""
    return [translator.build(layer, dataclasses.replace(build, shape=shape))
            for translator, layer, shape in zip(translators, spec, input_shapes(spec), strict=True)]


def with_mask_seed(spec: ModelSpec, seed: int) -> ModelSpec:
    """The spec with every layer that takes masks and was given no seed (its `seed` field None) drawing them from
    `seed`; a seed given is kept."""
    return tuple(dataclasses.replace(layer, seed=seed)  # type: ignore[type-var]
                 if layer.takes_mask and getattr(layer, "seed", 0) is None else layer for layer in spec)


def first_layer(spec: ModelSpec) -> tuple[int, Layer]:
    """The first layer after the input, which takes the model's input X, and its index."""
    return next(((index, layer) for index, layer in enumerate(spec) if layer.kind != "input"), (0, spec[0]))


def in_features(spec: ModelSpec) -> int:
    return input_shape(spec)[-1]


def out_features(spec: ModelSpec) -> int:
    return output_shape(spec)[-1]


def param_shapes(spec: ModelSpec) -> dict[str, Shape]:
    """Canonical names and shapes, "{index}.{name}" in layer order: "0.weight" (out, in), "0.bias" (out,)."""
    return {f"{index}.{name}": shape for index, layer in enumerate(spec) for name, shape in layer.params().items()}


def state_shapes(spec: ModelSpec) -> dict[str, Shape]:
    """Non-trainable state, named like parameters: "{index}.running_mean"."""
    return {f"{index}.{name}": shape for index, layer in enumerate(spec) for name, shape in layer.state().items()}


def mlp_spec(in_features: int, hidden: tuple[int, ...], out_features: int, activation: str,
             batchnorm: str | None = None, bias: bool = True) -> ModelSpec:
    """Linear–activation–…–Linear; no hidden sizes gives a single linear layer. `batchnorm` puts a BatchNorm
    between each hidden Linear and its activation, keeping the "biased" batch variance in its running
    variance (Keras, Flax, Gluon) or the "unbiased" one (torch). Without `bias`, no Linear layer has one."""
    if batchnorm not in (None, *BATCHNORM_VARIANCES):
        raise ValueError(f"batchnorm must be one of {', '.join(BATCHNORM_VARIANCES)}; received: {batchnorm!r}")
    sizes = (in_features, *hidden, out_features)
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            if batchnorm is not None:
                layers.append(BatchNorm(n_in, unbiased_running_var=batchnorm == "unbiased"))
            layers.append(Activation(activation))
        layers.append(Linear(n_in, n_out, bias=bias))
    return make_spec(layers)
