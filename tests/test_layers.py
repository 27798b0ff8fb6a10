"""Each layer type on its own: its hand-derived NumPy backward against central finite differences (float64),
its spec (shapes, errors that name the layer), its JSON form, and its translators' layouts."""

from __future__ import annotations

import numpy as np
import pytest

from backend_compare.layers import (
    LAYER_TYPES,
    Activation,
    Layer,
    Linear,
    Link,
    decode_spec,
    encode_spec,
    first_layer,
    input_shape,
    make_spec,
    output_shape,
    param_shapes,
    state_shapes,
)

EXAMPLES = [(kind, i, example) for kind, layer in LAYER_TYPES.items() for i, example in enumerate(layer.examples())]


def _forward(spec: list[Layer], params: dict[str, np.ndarray], x: np.ndarray, train: bool = True,
             state: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, list[object]]:
    """Training: batch statistics, no state handed over (so none changes); evaluation: the state given."""
    saved = []
    for index, layer in enumerate(spec):
        given = {name: params[f"{index}.{name}"] for name in layer.params()}
        if not train:
            given.update({name: (state or {})[f"{index}.{name}"] for name in layer.state()})
        elif layer.takes_mask:  # the mask of a first step, as a backend gives it
            given["keep"] = layer.keep_mask(index, 0, len(x), x.shape[1:], "float64")
        x, kept = layer.forward(given, x, train)
        saved.append(kept)
    return x, saved


@pytest.mark.parametrize("train", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("kind,number,example", EXAMPLES, ids=[f"{kind}-{i}" for kind, i, _ in EXAMPLES])
def test_backward_matches_central_differences(kind: str, number: int, example: list[Layer], train: bool) -> None:
    spec = make_spec(example)
    rng = np.random.default_rng(number)
    first = first_layer(spec)[1]
    x = first.example_input(rng, (4, *input_shape(spec)))  # token ids where an embedding takes them
    params = {name: rng.normal(size=shape) for name, shape in param_shapes(spec).items()}
    state = {name: rng.uniform(0.5, 2.0, size=shape) for name, shape in state_shapes(spec).items()}  # var > 0
    weights = rng.normal(size=(4, *output_shape(spec)))  # the loss: sum(weights * output)

    def loss(p: dict[str, np.ndarray], inputs: np.ndarray) -> float:
        return float(np.sum(weights * _forward(list(spec), p, inputs, train, state)[0]))

    _, saved = _forward(list(spec), params, x, train, state)
    grad: np.ndarray | None = weights
    grads: dict[str, np.ndarray] = {}
    for index in reversed(range(len(spec))):
        layer = spec[index]
        assert grad is not None
        grad, found = layer.backward({name: params[f"{index}.{name}"] for name in layer.params()}, saved[index],
                                     grad, True)
        grads.update({f"{index}.{name}": value for name, value in found.items()})
    assert set(grads) == set(params)

    def numeric(value: np.ndarray, call: object) -> np.ndarray:
        found = np.zeros_like(value)
        for where in np.ndindex(value.shape):
            original = value[where]
            value[where] = original + 1e-6
            up = call()  # type: ignore[operator]
            value[where] = original - 1e-6
            down = call()  # type: ignore[operator]
            value[where] = original
            found[where] = (up - down) / 2e-6
        return found

    for name, value in params.items():
        np.testing.assert_allclose(grads[name], numeric(value, lambda: loss(params, x)), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{kind}: d/d{name}")
    if not first.takes_ids:  # ids are not differentiable
        np.testing.assert_allclose(grad, numeric(x, lambda: loss(params, x)), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{kind}: d/d(input)")


@pytest.mark.parametrize("kind", LAYER_TYPES)
def test_every_layer_type_has_examples_and_a_translator_for_every_framework(kind: str) -> None:
    layer = LAYER_TYPES[kind]
    assert layer.examples(), f"{kind} gives no example for the gradient and parity checks"
    assert set(layer.translators) >= {"torch", "mxnet", "jax", "tensorflow"}


def test_a_spec_round_trips_through_json() -> None:
    spec = make_spec([Linear(3, 4), Activation("relu"), Linear(4, 2, bias=False)])
    assert decode_spec(encode_spec(spec)) == spec
    assert encode_spec(spec)[1] == {"activation": "relu"}  # the form earlier releases' workers read


def test_layers_that_do_not_fit_are_named_with_their_position() -> None:
    with pytest.raises(ValueError, match=r"^layer 2 linear\(5, 1\) takes inputs of width in_features=5; it follows "
                                         r"an output of shape \(4,\)$"):
        make_spec([Linear(3, 4), Activation("tanh"), Linear(5, 1)])
    with pytest.raises(ValueError, match="at least one layer with parameters"):
        make_spec([Activation("tanh")])
    with pytest.raises(ValueError, match=r"Linear out_features must be a positive integer; received: 0"):
        Linear(3, 0)
    with pytest.raises(ValueError, match=r"activation must be one of tanh, relu, sigmoid, gelu, gelu_tanh, leaky_relu, "
                                         r"softplus, elu, silu; received: 'swish'"):
        Activation("swish")


@pytest.mark.parametrize("permutation", [(1, 0), (2, 3, 1, 0), (0, 2, 1)])
def test_a_link_moves_an_array_to_the_frameworks_layout_and_back(permutation: tuple[int, ...]) -> None:
    canonical = np.arange(np.prod(range(2, 2 + len(permutation)))).reshape(range(2, 2 + len(permutation)))
    link = Link("kernel", permutation)
    native = link.native_array(canonical)
    assert native.shape == tuple(canonical.shape[axis] for axis in permutation)
    np.testing.assert_array_equal(link.canonical_array(native), canonical)
