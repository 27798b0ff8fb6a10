"""The losses where frameworks part: l1 and label-smoothed cross-entropy, each framework's own loss object against
the value and gradient written here; JAX's |x| at exactly 0, a finding; bad settings refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from backend_compare import mlp_spec
from backend_compare.backends import BACKENDS
from backend_compare.backends.testing import assert_close
from backend_compare.layers import Linear
from tests.conftest import load_backend

RNG = np.random.default_rng(11)
X = RNG.normal(size=(6, 3))
START = {"0.weight": RNG.normal(0.0, 0.5, size=(4, 3)), "0.bias": RNG.normal(0.0, 0.5, size=4)}
TARGETS = RNG.normal(size=(6, 4))
LABELS = np.array([0, 3, 1, 1, 2, 0], dtype=float)


def logits() -> np.ndarray:
    return X @ START["0.weight"].T + START["0.bias"]


def loss_and_grads(name: str, y: np.ndarray, start: dict[str, np.ndarray] = START,
                   **options: object) -> tuple[float, dict[str, np.ndarray]]:
    model = load_backend(name)([Linear(3, 4)], dtype="float64", **options)
    model.set_params(start)
    return model.loss_and_grads(X, y)


@pytest.mark.parametrize("name", BACKENDS)
def test_l1_is_the_mean_absolute_error_and_its_gradient_the_mean_sign(name: str) -> None:
    residual = logits() - TARGETS
    loss, grads = loss_and_grads(name, TARGETS, loss="l1")
    sign = np.sign(residual) / residual.size
    assert loss == pytest.approx(np.mean(np.abs(residual)), rel=1e-13)
    assert_close(grads["0.weight"], sign.T @ X, dtype="float64", what=f"{name} l1 weight gradient")
    assert_close(grads["0.bias"], sign.sum(axis=0), dtype="float64", what=f"{name} l1 bias gradient")


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_label_smoothing_spreads_epsilon_over_every_class(name: str, epsilon: float) -> None:
    """torch's: q = (1 − ε)·one-hot + ε/K, the label's class included (Keras's CategoricalCrossentropy and optax's
    smooth_labels agree; MXNet's legacy SoftmaxOutput(smooth_alpha) gives the others ε/(K − 1) instead)."""
    z = logits()
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    q = (1 - epsilon) * np.eye(4)[LABELS.astype(int)] + epsilon / 4
    loss, grads = loss_and_grads(name, LABELS, loss="cross-entropy", label_smoothing=epsilon)
    error = (np.exp(log_p) - q) / len(z)
    assert loss == pytest.approx(float(np.mean(-(q * log_p).sum(axis=1))), rel=1e-13)
    assert_close(grads["0.weight"], error.T @ X, dtype="float64", what=f"{name} ε={epsilon} weight gradient")
    assert_close(grads["0.bias"], error.sum(axis=0), dtype="float64", what=f"{name} ε={epsilon} bias gradient")


@pytest.mark.parametrize("name", BACKENDS)
def test_class_weights_make_torchs_weighted_mean(name: str) -> None:
    """Σ w[yₙ]·lₙ / Σ w[yₙ]: torch's CrossEntropyLoss(weight=); Keras's class weights divide by the batch size
    unless reduction="mean_with_sample_weight"; Gluon's sample_weight and optax have no weighted mean."""
    weights = np.array([1.0, 2.0, 5.0, 0.5])
    z = logits()
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    labels = LABELS.astype(int)
    w = weights[labels]
    loss, grads = loss_and_grads(name, LABELS, loss="cross-entropy", class_weights=list(weights))
    error = (np.exp(log_p) - np.eye(4)[labels]) * (w / w.sum())[:, None]
    assert loss == pytest.approx(float(-(w * log_p[np.arange(6), labels]).sum() / w.sum()), rel=1e-13)
    assert_close(grads["0.weight"], error.T @ X, dtype="float64", what=f"{name} weighted weight gradient")
    assert_close(grads["0.bias"], error.sum(axis=0), dtype="float64", what=f"{name} weighted bias gradient")


def test_class_weights_are_refused_in_one_line() -> None:
    numpy = load_backend("numpy")
    with pytest.raises(ValueError, match=r"class_weights must be 4 finite numbers > 0, one per class"):
        numpy([Linear(3, 4)], loss="cross-entropy", class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"class_weights with label_smoothing: torch weights the smoothing term"):
        numpy([Linear(3, 4)], loss="cross-entropy", class_weights=[1.0] * 4, label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"class_weights applies to loss cross-entropy, not mse"):
        numpy([Linear(3, 4)], class_weights=[1.0] * 4)


@pytest.mark.parametrize("name", BACKENDS)
def test_binary_cross_entropy_takes_logits_and_probabilities(name: str) -> None:
    """torch's BCEWithLogitsLoss, Gluon's SigmoidBinaryCrossEntropyLoss(from_sigmoid=False), optax's
    sigmoid_binary_cross_entropy, Keras's BinaryCrossentropy(from_logits=True): the same mean, unclipped."""
    z = logits() * 20  # far into the tails, where a naive log(σ) would overflow or a clip would show
    probabilities = RNG.uniform(size=z.shape).round(1)
    start = {key: value * 20 for key, value in START.items()}
    loss, grads = loss_and_grads(name, probabilities, start, loss="bce-with-logits")
    sigmoid = 1 / (1 + np.exp(-z))
    error = (sigmoid - probabilities) / z.size
    assert loss == pytest.approx(float(np.mean(np.logaddexp(0, z) - z * probabilities)), rel=1e-13)
    assert_close(grads["0.weight"], error.T @ X, dtype="float64", what=f"{name} bce weight gradient")
    assert_close(grads["0.bias"], error.sum(axis=0), dtype="float64", what=f"{name} bce bias gradient")


def test_binary_targets_outside_zero_to_one_are_refused() -> None:
    model = load_backend("numpy")([Linear(3, 4)], loss="bce-with-logits")
    with pytest.raises(ValueError, match=r"y must hold probabilities from 0 to 1 for loss bce-with-logits .*"
                                         r"received 2\.0 at index \(0, 1\)"):
        model.fit(X, np.where(np.arange(24).reshape(6, 4) == 1, 2.0, 0.0), epochs=1)


@pytest.mark.parametrize("name", BACKENDS)
def test_the_l1_gradient_where_a_prediction_is_exact(name: str) -> None:
    """0 where the residual is exactly 0 in every framework but JAX, whose jnp.abs has gradient +1 there
    (jax/_src/lax/lax.py, _abs_jvp_rule: select(x >= 0, g, -g)); optax has no L1 loss of its own."""
    zero = {key: np.zeros_like(value) for key, value in START.items()}  # predicts 0, exactly, in every framework
    exact = TARGETS.copy()
    exact[0] = 0.0  # the first row predicted exactly
    _, grads = loss_and_grads(name, exact, zero, loss="l1")
    residual = -exact
    want = np.sign(residual)
    if name == "jax":
        want[0] = 1.0
    assert_close(grads["0.bias"], want.sum(axis=0) / residual.size, dtype="float64", what=f"{name} at 0")


def test_label_smoothing_is_refused_beyond_its_range_and_without_cross_entropy() -> None:
    numpy = load_backend("numpy")
    spec = mlp_spec(2, (3,), 3, "tanh")
    with pytest.raises(ValueError, match=r"label_smoothing must be below 1 .*received: 1\.0"):
        numpy(spec, loss="cross-entropy", label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be a finite number >= 0; received: -0\.1"):
        numpy(spec, loss="cross-entropy", label_smoothing=-0.1)
    with pytest.raises(ValueError, match=r"label_smoothing applies to loss cross-entropy, not mse"):
        numpy(spec, label_smoothing=0.1)


def test_a_binary_target_column_trains_with_bce_on_every_backend(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    features = rng.normal(size=(60, 3))
    labels = (features @ [1.0, -2.0, 0.5] + rng.normal(scale=0.5, size=60) > 0).astype(int)
    data = tmp_path / "binary.csv"
    data.write_text("a,b,c,label\n" + "".join(f"{x:.6f},{y:.6f},{z:.6f},{t}\n" for (x, y, z), t in
                                                 zip(features, labels, strict=True)))
    ran = cli("--data", str(data), "--loss", "bce-with-logits", "--dtype", "float64", "--epochs", "3",
              "--backends", ",".join(BACKENDS), "--executor", "inline", "--check", "--format", "json")
    assert ran.code == 0, ran.err
    assert "--loss bce-with-logits does not suit --task linreg" in cli("--loss", "bce-with-logits").err
