"""The model description, kept under its earlier name: layers now live in backend_compare.layers, one module
per layer type."""

from __future__ import annotations

from ..layers import (
    ACTIVATIONS,
    DTYPES,
    Activation,
    Layer,
    Linear,
    ModelSpec,
    in_features,
    input_shape,
    make_spec,
    mlp_spec,
    out_features,
    param_shapes,
    state_shapes,
)

__all__ = ["ACTIVATIONS", "DTYPES", "Activation", "Layer", "Linear", "ModelSpec", "in_features", "input_shape",
           "make_spec", "mlp_spec", "out_features", "param_shapes", "state_shapes"]
