"""Which layer of model B is which layer of model A: inferred from the order, kinds and parameter shapes of the
layers that hold parameters, or given (a dict of layer paths, or a callable from A's path to B's). Nothing is
guessed: where the inference fails, the error shows both models' layers side by side and how to say it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .native import RECURRENT, Found, NativeModel

MappingArg = Mapping[str, str] | Callable[[str], str] | None

HOW = ("pass mapping={A layer path: B layer path, …} (every layer with parameters) or a callable from A's path "
       "to B's")


def _shapes(found: Found) -> dict[str, tuple[int, ...]]:
    assert found.layer is not None
    return {**found.layer.params(), **found.layer.state()}


def _row(found: Found | None) -> str:
    if found is None:
        return "—"
    shapes = ", ".join(f"{name} {tuple(shape)}" for name, shape in _shapes(found).items())
    return f"{found.path}: {found.describe()} [{shapes}]"


def side_by_side(a: list[Found], b: list[Found]) -> str:
    """Both models' layers with parameters, one pair of rows per position."""
    width = max((len(_row(item)) for item in a), default=1)
    rows = [f"  {'model A':<{width}}   model B"]
    for index in range(max(len(a), len(b))):
        left = _row(a[index]) if index < len(a) else "—"
        right = _row(b[index]) if index < len(b) else "—"
        rows.append(f"  {left:<{width}}   {right}")
    return "\n".join(rows)


def merged(a: Found, b: Found) -> bool:
    """Whether a pair of recurrent layers holds two biases on one side and one on the other: the one is their sum."""
    return (a.kind in RECURRENT and a.kind == b.kind and a.layer is not None and b.layer is not None
            and {getattr(a.layer, "bias", None), getattr(b.layer, "bias", None)} == {"two", "input"})


def _fits(a: Found, b: Found) -> str | None:
    """Why b cannot take a's parameters, or None."""
    if a.kind != b.kind:
        return f"A's {a.path!r} is {a.kind}, B's {b.path!r} is {b.kind}"
    if merged(a, b):
        shapes_a, shapes_b = _shapes(a), _shapes(b)
        return None if shapes_a["weight_ih"] == shapes_b["weight_ih"] and shapes_a["weight_hh"] == shapes_b[
            "weight_hh"] else f"A's {a.path!r} holds {shapes_a}, B's {b.path!r} holds {shapes_b} (canonical layout)"
    if _shapes(a) != _shapes(b):
        return f"A's {a.path!r} holds {_shapes(a)}, B's {b.path!r} holds {_shapes(b)} (canonical layout)"
    return None


def paired(a: NativeModel, b: NativeModel, mapping: MappingArg = None) -> list[tuple[int, int]]:
    """(index in A's layers, index in B's) for every layer with parameters; a ValueError says why not."""
    held_a = [index for index, item in enumerate(a.layers) if item.has_params]
    held_b = [index for index, item in enumerate(b.layers) if item.has_params]
    table = side_by_side([a.layers[i] for i in held_a], [b.layers[i] for i in held_b])
    if mapping is None:
        if len(held_a) != len(held_b):
            raise ValueError(f"model A has {len(held_a)} layers with parameters and model B {len(held_b)}: the "
                             f"layers cannot be paired in order; {HOW}\n{table}")
        pairs = list(zip(held_a, held_b, strict=True))
    else:
        pairs = _given(a, b, held_a, held_b, mapping, table)
    for i, j in pairs:
        why = _fits(a.layers[i], b.layers[j])
        if why:
            raise ValueError(f"the layers do not pair{' in order' if mapping is None else ''}: {why}; {HOW}\n{table}")
    return pairs


def _given(a: NativeModel, b: NativeModel, held_a: list[int], held_b: list[int], mapping: Any,
           table: str) -> list[tuple[int, int]]:
    by_path_a = {a.layers[i].path: i for i in held_a}
    by_path_b = {b.layers[j].path: j for j in held_b}
    if callable(mapping):
        try:
            given = {path: mapping(path) for path in by_path_a}
        except Exception as err:  # the user's callable
            raise ValueError(f"mapping: the callable failed on A's layer paths: {type(err).__name__}: {err}") from err
    elif isinstance(mapping, Mapping):
        given = dict(mapping)
    else:
        raise TypeError(f"mapping must be a dict of layer paths, a callable or None; received: "
                        f"{type(mapping).__name__}")
    for path_a, path_b in given.items():
        if not isinstance(path_a, str) or not isinstance(path_b, str):
            raise TypeError(f"mapping must pair layer paths (text) with layer paths; received: {path_a!r}: {path_b!r}")
        if path_a not in by_path_a:
            raise ValueError(f"mapping names {path_a!r}, not a layer with parameters of model A; "
                             f"its layers: {', '.join(by_path_a) or 'none'}")
        if path_b not in by_path_b:
            raise ValueError(f"mapping maps {path_a!r} to {path_b!r}, not a layer with parameters of model B; "
                             f"its layers: {', '.join(by_path_b) or 'none'}")
    twice = sorted({path for path in given.values() if list(given.values()).count(path) > 1})
    if twice:
        raise ValueError(f"mapping gives B's {', '.join(map(repr, twice))} to more than one layer of A: each layer "
                         "pairs with one")
    missing_a = [path for path in by_path_a if path not in given]
    missing_b = [path for path in by_path_b if path not in set(given.values())]
    if missing_a or missing_b:
        raise ValueError(f"mapping leaves layers unpaired: A's {missing_a or 'none'}, B's {missing_b or 'none'}; "
                         f"{HOW}\n{table}")
    return sorted((by_path_a[path_a], by_path_b[path_b]) for path_a, path_b in given.items())


def renamed(values: Mapping[str, Any], a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]],
            backwards: bool = False, gradients: bool = False) -> dict[str, Any]:
    """A's canonical arrays under B's names (backwards: B's under A's). A recurrent layer's two biases become the
    other side's one as their sum (a gradient: either one's, the same), and one bias becomes two with the second 0."""
    found_a = {a.layers[i].path: a.layers[i] for i, _ in pairs}
    found_b = {b.layers[j].path: b.layers[j] for _, j in pairs}
    names = {a.layers[i].path: b.layers[j].path for i, j in pairs}
    source, target = (found_b, found_a) if backwards else (found_a, found_b)
    if backwards:
        names = {value: key for key, value in names.items()}
    found: dict[str, Any] = {}
    for name, value in values.items():
        layer, _, rest = name.rpartition(".")
        if merged(source[layer], target[names[layer]]) and rest in ("bias_ih", "bias_hh"):
            continue
        found[f"{names[layer]}.{rest}"] = value
    for layer, item in source.items():
        other = target[names[layer]]
        if not merged(item, other) or f"{layer}.bias_ih" not in values:
            continue
        first = np.asarray(values[f"{layer}.bias_ih"])
        if getattr(item.layer, "bias", None) == "two":  # two into one
            second = np.asarray(values[f"{layer}.bias_hh"])
            found[f"{other.path}.bias_ih"] = first if gradients else first + second
        else:  # one into two: the second held at zero
            found[f"{other.path}.bias_ih"] = first
            if not gradients:
                found[f"{other.path}.bias_hh"] = np.zeros_like(first)
            elif item.kind != "gru":  # a GRU's n gate takes b_hn inside r ⊙ (…): no gradient of one bias is its
                found[f"{other.path}.bias_hh"] = first
    return found
