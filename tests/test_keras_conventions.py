"""What Keras 3 computes left to its defaults, measured on one Adam or SGD step: the differences the
tensorflow backend aligns (README, "How the frameworks' conventions are made the same"). Each test
fails if Keras changes, so a workaround that is no longer needed is noticed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backend_compare.backends import Linear, make_spec
from tests.conftest import load_backend

LR, GRAD, START = 2**-7, 0.49, 1.0


@pytest.fixture(scope="module")
def keras() -> Any:
    load_backend("tensorflow")  # skipped when TensorFlow is missing; selects Keras's TensorFlow backend
    import keras

    return keras


def one_step(keras: Any, optimizer: Any, grad: float = GRAD) -> float:
    """How far one step moves a float64 weight at START with gradient `grad`."""
    import tensorflow as tf

    weight = tf.Variable([START], dtype="float64")
    optimizer.build([weight])
    optimizer.apply_gradients([(tf.constant([grad], dtype="float64"), weight)])
    return float(START - weight.numpy()[0])


def paper_adam_first_step(grad: float, eps: float) -> float:
    """Kingma & Ba's first update, m̂ = g and v̂ = g², in float64."""
    return LR * grad / (abs(grad) + eps)


def test_adam_bias_correction_sees_beta2_rounded_through_float32(keras: Any) -> None:
    keras.config.set_floatx("float64")
    try:
        plain = one_step(keras, keras.optimizers.Adam(LR, epsilon=0.0))
        exact = one_step(keras, keras.optimizers.Adam(LR, beta_1=np.float64(0.9), beta_2=np.float64(0.999),
                                                      epsilon=0.0))
    finally:
        keras.config.set_floatx("float32")
    assert exact == pytest.approx(LR, rel=1e-15)  # given as float64, the first step is lr·sign(g)
    # ops.cast(0.999, float64) goes through a float32 tensor: β₂ = 0.99900001287 and β₁ = 0.89999997616 in
    # the bias correction √(1−β₂ᵗ) / (1−β₁ᵗ), while the moments use the exact 1 − β
    beta1, beta2 = (np.float64(np.float32(beta)) for beta in (0.9, 0.999))
    expected = np.sqrt((1 - beta2) / (1 - 0.999)) * (1 - 0.9) / (1 - beta1) - 1
    assert plain / LR - 1 == pytest.approx(expected, rel=1e-6)
    assert abs(plain / LR - 1) > 6e-6


def test_learning_rate_is_a_variable_of_floatx(keras: Any) -> None:
    assert keras.optimizers.SGD(0.03).learning_rate.dtype == "float32"  # whatever the weights' dtype
    keras.config.set_floatx("float64")
    try:
        assert keras.optimizers.SGD(0.03).learning_rate.dtype == "float64"
    finally:
        keras.config.set_floatx("float32")


def test_adam_adds_epsilon_to_the_uncorrected_root(keras: Any) -> None:
    keras.config.set_floatx("float64")
    try:
        grad = 1e-6  # small enough for ε to matter: ε = 1e-7 against √v = √(1−β₂)·|g| ≈ 3.2e-8
        step = one_step(keras, keras.optimizers.Adam(LR, beta_1=np.float64(0.9), beta_2=np.float64(0.999)), grad)
    finally:
        keras.config.set_floatx("float32")
    assert keras.optimizers.Adam().epsilon == 1e-7  # torch's default is 1e-8
    keras_form = LR * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * grad) / (np.sqrt(0.001 * grad**2) + 1e-7)
    assert step == pytest.approx(keras_form, rel=1e-12)
    assert abs(step - paper_adam_first_step(grad, 1e-7)) > 0.5 * step  # far from ε on √v̂


def test_weight_decay_is_decoupled(keras: Any) -> None:
    keras.config.set_floatx("float64")
    try:
        step = one_step(keras, keras.optimizers.SGD(LR, weight_decay=0.5), grad=0.0)
    finally:
        keras.config.set_floatx("float32")
    assert step == pytest.approx(LR * 0.5 * START, rel=1e-12)  # w −= lr·wd·w with no gradient at all


def test_the_backend_takes_the_papers_adam_and_torchs_l2() -> None:
    X, y = np.array([[1.0], [2.0]]), np.array([[0.5], [-1.0]])
    runs = {}
    for name in ("numpy", "tensorflow"):
        model = load_backend(name)(make_spec([Linear(1, 1)]), dtype="float64", optimizer="adam", lr=0.01,
                                   weight_decay=0.1)
        model.set_params({"0.weight": np.array([[0.3]]), "0.bias": np.array([0.1])})
        model.load(X, y)
        runs[name] = [model.step(np.arange(2)) for _ in range(5)], model.get_params()
    assert runs["tensorflow"][0] == pytest.approx(runs["numpy"][0], rel=1e-14)
    for key, value in runs["numpy"][1].items():
        np.testing.assert_allclose(runs["tensorflow"][1][key], value, rtol=1e-14)
