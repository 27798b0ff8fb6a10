"""The activations where frameworks part, checked against the frameworks themselves: gelu's two forms and
which one each framework gives by default, leaky_relu's default slopes, and the float32 constants and
kernels that move a float64 gelu or leaky_relu (each a named allowance in backends/tolerances.py)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from scipy.special import erf

from backend_compare.backends import get_backend
from backend_compare.backends.testing import assert_allowance_holds
from backend_compare.backends.tolerances import ALLOWANCES
from backend_compare.layers.activation import FUNCTIONS, LEAKY_SLOPE

X = np.linspace(-6.0, 6.0, 20001)
EXACT_GELU = 0.5 * X * (1.0 + erf(X / np.sqrt(2.0)))


@pytest.fixture(scope="module")
def frameworks() -> dict[str, object]:
    for name in ("torch", "jax", "tensorflow"):
        get_backend(name)  # each imported as its backend imports it (JAX with x64, Keras on TensorFlow)
    import jax
    import keras
    import torch

    return {"torch": torch, "jax": jax, "keras": keras}


def test_gelu_is_exact_in_torch_and_keras_by_default_and_the_tanh_form_in_jax(frameworks) -> None:
    torch, jax, keras = frameworks["torch"], frameworks["jax"], frameworks["keras"]
    torch_default = torch.nn.GELU()(torch.from_numpy(X)).numpy()
    jax_default = np.asarray(jax.nn.gelu(X))
    keras_default = np.asarray(keras.activations.gelu(X))
    tanh_form = FUNCTIONS["gelu_tanh"].forward(X)
    assert np.max(np.abs(torch_default - EXACT_GELU)) < 1e-14
    assert np.max(np.abs(jax_default - tanh_form)) < 1e-14  # jax.nn.gelu(approximate=True) by default
    assert np.max(np.abs(keras_default - EXACT_GELU)) < 1e-8  # exact, but see the float32 constant below
    gap = np.max(np.abs(tanh_form - EXACT_GELU))
    assert 1e-4 < gap < 1e-3  # what a torch model ported to Flax without approximate=False computes differently
    assert inspect.signature(jax.nn.gelu).parameters["approximate"].default is True
    assert inspect.signature(keras.activations.gelu).parameters["approximate"].default is False


def test_the_default_leaky_relu_slopes_differ_and_the_suite_gives_torchs(frameworks) -> None:
    torch, jax, keras = frameworks["torch"], frameworks["jax"], frameworks["keras"]
    assert torch.nn.LeakyReLU().negative_slope == 0.01
    assert inspect.signature(jax.nn.leaky_relu).parameters["negative_slope"].default == 0.01
    assert keras.layers.LeakyReLU().negative_slope == 0.3
    assert inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default == 0.2
    assert LEAKY_SLOPE == 0.01


def test_tensorflow_rounds_gelus_constant_to_float32(frameworks) -> None:
    import tensorflow as tf

    tf_gelu = tf.nn.gelu(tf.constant(X), approximate=False).numpy()
    by_hand = 0.5 * X * tf.math.erfc(-tf.constant(X) * 0.7071067811865476).numpy()  # 1/√2 in float64
    assert np.max(np.abs(by_hand - EXACT_GELU)) < 1e-14
    rounded = 0.5 * X * (1.0 + erf(X * float(np.float32(0.7071067811865476))))
    assert np.max(np.abs(tf_gelu - rounded)) < 1e-14  # exactly the float32 constant's gelu
    assert 4e-9 < np.max(np.abs(tf_gelu - EXACT_GELU)) < 6e-9
    assert ALLOWANCES["tensorflow-gelu-float32-constant"].atol >= 1e-10


def test_mxnet_computes_gelu_in_float32() -> None:
    mxnet = get_backend("mxnet")
    from mxnet import gluon, nd

    assert mxnet.name == "mxnet"
    found = gluon.nn.GELU()(nd.array(X, dtype="float64")).asnumpy()
    error = np.abs(found - EXACT_GELU)
    assert 1e-7 < error.max() < 1e-6  # float32 rounding of values up to 6
    assert error.max() < ALLOWANCES["mxnet-gelu-float32"].rtol * 6


@pytest.mark.parametrize("allowance,activation", [
    ("tensorflow-gelu-float32-constant", "gelu"), ("tensorflow-gelu-float32-constant", "gelu_tanh"),
    ("mxnet-gelu-float32", "gelu"), ("mxnet-leaky-relu-float32-slope", "leaky_relu"),
    ("tensorflow-leaky-relu-float32-slope", "leaky_relu")])
def test_each_activation_allowance_is_needed_and_enough(allowance: str, activation: str) -> None:
    """Three epochs of a small MLP in float64 (lr and batch exact in 32 bits, so only the activation moves it):
    beyond the float64 tolerance against numpy, within the allowance."""
    from backend_compare.layers import Activation, Linear

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4))
    y = np.sin(X.sum(axis=1, keepdims=True))
    spec = [Linear(4, 16), Activation(activation), Linear(16, 1)]
    start = {name: rng.normal(0.0, 0.7, size=shape) for name, shape in
             {"0.weight": (16, 4), "0.bias": (16,), "2.weight": (1, 16), "2.bias": (1,)}.items()}
    trained = {}
    for name in ("numpy", ALLOWANCES[allowance].backend):
        model = get_backend(name)(spec, dtype="float64", lr=2**-4)
        model.set_params(start)
        trained[name] = model.fit(X, y, epochs=3, batch_size=16, seed=1).get_params()
    theirs = trained[ALLOWANCES[allowance].backend]
    assert_allowance_holds({key: (theirs[key], trained["numpy"][key]) for key in start}, allowance)
