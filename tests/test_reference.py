"""The hand-checkable figures of REFERENCE.md §4, and the default linreg reaching the truth."""

from __future__ import annotations

import numpy as np
import pytest

from backend_compare.backends.spec import Linear, make_spec
from backend_compare.comparison.run import train
from backend_compare.tasks import get_task

NO_BIAS = make_spec([Linear(1, 1, bias=False)])  # y = w·x
X = np.array([[1.0], [2.0], [3.0], [4.0]])
Y = np.array([[2.0], [4.0], [6.0], [8.0]])


def manual_descent(steps: int, lr: float = 0.01) -> float:
    """REFERENCE.md §4: dJ/dw = mean(2x(wx − y)), written out."""
    w = 0.0
    for _ in range(steps):
        w -= lr * np.mean(2 * X[:, 0] * (w * X[:, 0] - Y[:, 0]))
    return w


@pytest.mark.parametrize("steps", [1, 20])
def test_backend_loop_matches_manual_gradient_descent(backend, steps: int) -> None:
    model = backend(NO_BIAS, dtype="float64", lr=0.01)
    model.set_params({"0.weight": np.zeros((1, 1))})
    model.load(X, Y)
    for _ in range(steps):
        model.step(np.arange(4))
    assert model.get_params()["0.weight"][0, 0] == pytest.approx(manual_descent(steps), rel=1e-6)


def test_backend_gradient_at_start_is_minus_thirty(backend) -> None:
    model = backend(NO_BIAS, dtype="float64")
    model.set_params({"0.weight": np.zeros((1, 1))})
    loss, grads = model.loss_and_grads(X, Y)
    assert loss == pytest.approx(30.0)  # mean(y²) = (4 + 16 + 36 + 64) / 4
    assert grads["0.weight"][0, 0] == pytest.approx(-30.0)  # mean(2x·(0 − y)) = −2·mean(x·y)


def test_single_neuron_gradient_is_minus_two(backend) -> None:
    model = backend(NO_BIAS, dtype="float64")
    model.set_params({"0.weight": np.ones((1, 1))})
    loss, grads = model.loss_and_grads(np.array([[1.0]]), np.array([[2.0]]))
    assert loss == pytest.approx(1.0)
    assert grads["0.weight"][0, 0] == pytest.approx(-2.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_default_linreg_recovers_truth(backend, dtype: str) -> None:
    problem = get_task("linreg").make_problem(seed=0)
    result = train(backend(problem.spec, dtype=dtype, lr=0.03), problem)
    assert problem.truth is not None
    for name, truth in problem.truth.items():
        np.testing.assert_allclose(result.params[name], truth, rtol=0, atol=5e-3, err_msg=f"{backend.name} {name}")
    assert result.final_val_loss < 1e-3 < result.initial_loss
