"""Layer types, one module each (spec, NumPy forward and backward, a translator per framework), and the
registry that names them. Importing this package imports no deep-learning framework.

A layer type is one new module and one line in LAYER_TYPES below; another package adds one through the
entry-point group "backend_compare.layers" (name = "module:Class").
"""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import cache
from typing import Any

from .activation import ACTIVATIONS, Activation
from .base import Build, Layer, Link, Shape, Translator
from .batchnorm import BatchNorm
from .conv import Conv1d, Conv2d
from .dropout import Dropout, MaskTranslator
from .embedding import Embedding
from .layernorm import LayerNorm
from .linear import Linear
from .model import (
    BATCHNORM_VARIANCES,
    DTYPES,
    ModelSpec,
    built,
    first_layer,
    in_features,
    input_shape,
    input_shapes,
    make_spec,
    mlp_spec,
    out_features,
    output_shape,
    param_shapes,
    state_shapes,
    with_mask_seed,
)
from .pool import AvgPool2d, MaxPool2d
from .recurrent import GRU, LSTM, RNN, Recurrent
from .residual import Residual
from .shape import Flatten, Input

ENTRY_POINTS = "backend_compare.layers"

LAYER_TYPES: dict[str, type[Layer]] = {layer.kind: layer for layer in (
    Linear, Activation, BatchNorm, LayerNorm, Dropout, Input, Flatten, Conv1d, Conv2d, MaxPool2d, AvgPool2d, Residual,
    RNN, GRU, LSTM, Embedding)}

__all__ = [
    "ACTIVATIONS",
    "BATCHNORM_VARIANCES",
    "DTYPES",
    "GRU",
    "LAYER_TYPES",
    "LSTM",
    "RNN",
    "Activation",
    "AvgPool2d",
    "BatchNorm",
    "Build",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "Layer",
    "LayerNorm",
    "Linear",
    "Link",
    "MaskTranslator",
    "MaxPool2d",
    "ModelSpec",
    "Recurrent",
    "Residual",
    "Shape",
    "Translator",
    "built",
    "decode_spec",
    "encode_spec",
    "first_layer",
    "in_features",
    "input_shape",
    "input_shapes",
    "layer_type",
    "layer_types",
    "make_spec",
    "mlp_spec",
    "out_features",
    "output_shape",
    "param_shapes",
    "state_shapes",
    "with_mask_seed",
]


@cache
def layer_types() -> dict[str, type[Layer]]:
    """Every layer type: the built-in ones, then those other packages register (imported now)."""
    found = dict(LAYER_TYPES)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if entry.name not in found:
            module, _, name = entry.value.partition(":")
            found[entry.name] = getattr(importlib.import_module(module), name)
    return found


def layer_type(kind: str) -> type[Layer]:
    """The layer class registered as `kind`, built in or added by another package's entry point."""
    if kind in LAYER_TYPES:
        return LAYER_TYPES[kind]
    known = layer_types()
    if kind not in known:
        raise ValueError(f"layer type must be one of {', '.join(known)}; received: {kind!r}")
    return known[kind]


def encode_spec(spec: ModelSpec) -> list[dict[str, Any]]:
    """A spec as JSON: one {kind: options} per layer."""
    return [{layer.kind: layer.encode()} for layer in spec]


def decode_spec(layers: list[dict[str, Any]]) -> ModelSpec:
    """encode_spec's inverse."""
    found: list[Layer] = []
    for layer in layers:
        ((kind, options),) = layer.items()
        found.append(layer_type(kind).decode(options))
    return make_spec(found)
