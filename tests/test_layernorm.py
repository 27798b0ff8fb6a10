"""Layer normalisation, where the frameworks part: ε's default (each read from the framework itself), Flax's fast
variance, Gluon's ε held in 32 bits; each framework's own layer against the hand-derived NumPy one."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.backends.tolerances import ALLOWANCES
from backend_compare.layers import LayerNorm, Linear
from backend_compare.layers.text import parse_layers


def test_the_frameworks_default_eps_differ_and_are_given_explicitly() -> None:
    for name in ("torch", "mxnet", "jax", "tensorflow"):
        get_backend(name)  # each imported as its backend imports it
    import keras
    from flax import nnx
    from mxnet import gluon
    from torch import nn

    def defaults(function: object, *names: str) -> tuple:
        parameters = inspect.signature(function.__init__).parameters  # type: ignore[misc]
        return tuple(parameters[name].default for name in names)

    assert defaults(nn.LayerNorm, "eps", "elementwise_affine") == (1e-5, True)
    assert defaults(gluon.nn.LayerNorm, "epsilon", "center", "scale") == (1e-5, True, True)
    assert defaults(nnx.LayerNorm, "epsilon", "use_fast_variance") == (1e-6, True)
    assert defaults(keras.layers.LayerNormalization, "epsilon", "center", "scale") == (1e-3, True, True)


@pytest.mark.parametrize("name", ["torch", "mxnet", "jax", "tensorflow"])
@pytest.mark.parametrize("affine", [True, False])
def test_each_framework_normalises_as_the_numpy_layer(name: str, affine: bool) -> None:
    eps = 2.0**-10  # exact in 32 bits: Gluon's float ε (its allowance) is not in play
    spec = [LayerNorm(6, eps=eps, affine=affine), Linear(6, 2)]
    rng = np.random.default_rng(1)
    X, y = rng.normal(3.0, 0.5, size=(16, 6)), rng.normal(size=(16, 2))
    ours, theirs = get_backend("numpy")(spec, dtype="float64"), get_backend(name)(spec, dtype="float64")
    params = {key: rng.normal(1.0, 0.3, size=value.shape) for key, value in ours.get_params().items()}
    ours.set_params(params)
    theirs.set_params(params)
    np.testing.assert_allclose(theirs.forward_activations(X)[0], ours.forward_activations(X)[0], rtol=1e-12,
                               atol=1e-13)
    (loss_a, grads_a), (loss_b, grads_b) = ours.loss_and_grads(X, y), theirs.loss_and_grads(X, y)
    assert abs(loss_a - loss_b) <= 1e-12 * abs(loss_a)
    for key in grads_a:
        np.testing.assert_allclose(grads_b[key], grads_a[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert set(params) == ({"0.weight", "0.bias", "1.weight", "1.bias"} if affine else {"1.weight", "1.bias"})


def test_gluon_holds_eps_in_32_bits_and_its_allowance_covers_it() -> None:
    spec = [LayerNorm(8, eps=1e-3), Linear(8, 1)]
    X = np.random.default_rng(0).normal(size=(256, 8)) * 0.01  # variance well below ε: where ε matters most
    ours, theirs = get_backend("numpy")(spec, dtype="float64"), get_backend("mxnet")(spec, dtype="float64")
    theirs.set_params(ours.get_params())
    a, b = ours.forward_activations(X)[0], theirs.forward_activations(X)[0]
    relative = np.abs(a - b) / np.abs(a)
    assert 1e-9 < relative.max() < ALLOWANCES["mxnet-layernorm-float32-eps"].rtol
    float32_eps = LayerNorm(8, eps=float(np.float32(1e-3)))  # the ε Gluon computes with
    np.testing.assert_allclose(b, float32_eps.forward({"weight": np.ones(8), "bias": np.zeros(8)}, X, True)[0],
                               rtol=1e-12)


def test_layernorm_in_text_takes_the_last_axis_and_bad_options_are_named() -> None:
    layers = parse_layers("linear(8), layernorm, relu, layernorm(eps=1e-3, affine=False), linear(2)", (4,))
    assert layers[2] == LayerNorm(8) and layers[4] == LayerNorm(8, eps=1e-3, affine=False)
    with pytest.raises(ValueError, match=r"^layer 2 layernorm\(eps=0\): LayerNorm eps must be a number in \(0, 1\); "
                                         r"received: 0$"):
        parse_layers("linear(8), layernorm(eps=0), linear(2)", (4,))
    with pytest.raises(ValueError, match="layernorm takes only eps=E and affine=False, by name"):
        parse_layers("linear(8), layernorm(8), linear(2)", (4,))
