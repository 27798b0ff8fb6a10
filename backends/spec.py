"""Framework-neutral model description and the canonical parameter layout."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

ACTIVATIONS = ("tanh", "relu", "sigmoid")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Linear:
    """y = x @ weight.T + bias, weight (out_features, in_features)."""

    in_features: int
    out_features: int
    bias: bool = True

    def __post_init__(self) -> None:
        for field in ("in_features", "out_features"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Linear {field} must be a positive integer; received: {value!r}")


@dataclass(frozen=True)
class Activation:
    name: str

    def __post_init__(self) -> None:
        if self.name not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}; received: {self.name!r}"
            )


Layer = Linear | Activation
ModelSpec = tuple[Layer, ...]


def make_spec(layers: Sequence[Layer]) -> ModelSpec:
    """Check that consecutive linear layers fit together and return the spec as a tuple."""
    spec = tuple(layers)
    linears = [layer for layer in spec if isinstance(layer, Linear)]
    if not linears:
        raise ValueError("a model spec needs at least one Linear layer; received none")
    for before, after in itertools.pairwise(linears):
        if before.out_features != after.in_features:
            raise ValueError(
                f"Linear layers do not chain: out_features={before.out_features} "
                f"is followed by in_features={after.in_features}"
            )
    return spec


def mlp_spec(in_features: int, hidden: tuple[int, ...], out_features: int, activation: str) -> ModelSpec:
    """Linear–activation–…–Linear; no hidden sizes gives a single linear layer."""
    sizes = (in_features, *hidden, out_features)
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if i:
            layers.append(Activation(activation))
        layers.append(Linear(n_in, n_out))
    return make_spec(layers)


def in_features(spec: ModelSpec) -> int:
    return next(layer.in_features for layer in spec if isinstance(layer, Linear))


def out_features(spec: ModelSpec) -> int:
    return [layer.out_features for layer in spec if isinstance(layer, Linear)][-1]


def param_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Canonical names and shapes: "{index}.weight" (out, in) and "{index}.bias" (out,)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for index, layer in enumerate(spec):
        if isinstance(layer, Linear):
            shapes[f"{index}.weight"] = (layer.out_features, layer.in_features)
            if layer.bias:
                shapes[f"{index}.bias"] = (layer.out_features,)
    return shapes
