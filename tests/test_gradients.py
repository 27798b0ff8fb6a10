"""Every backend's gradients against the hand-derived NumPy ones, and those against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from backend_compare.backends import LOSSES, get_backend, mlp_spec, param_shapes
from backend_compare.backends.spec import Linear, ModelSpec, make_spec
from backend_compare.backends.testing import assert_close

SPECS = {
    "linear": make_spec([Linear(3, 1)]),
    "linear-2-out": make_spec([Linear(3, 2)]),
    "tanh": mlp_spec(3, (5,), 1, "tanh"),
    "relu": mlp_spec(3, (5,), 1, "relu"),
    "sigmoid": mlp_spec(3, (4, 4), 2, "sigmoid"),
}


SPECS["softmax-4-classes"] = make_spec([Linear(3, 4)])
# cross-entropy needs one output per class, at least 2: each loss with the specs it applies to
CASES = [(spec_name, loss) for loss in LOSSES for spec_name, spec in SPECS.items()
         if loss != "cross-entropy" or param_shapes(spec)[[*param_shapes(spec)][-1]][0] >= 2]


def random_case(spec: ModelSpec, seed: int, n: int = 7, loss: str = "mse") -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {name: rng.normal(size=shape) for name, shape in param_shapes(spec).items()}
    n_in, n_out = param_shapes(spec)["0.weight"][1], [s for s in param_shapes(spec).values()][-1][0]
    if loss == "cross-entropy":  # class indices, every class present when n allows
        return params, rng.normal(size=(n, n_in)), rng.permutation(np.arange(n) % n_out)
    if loss == "bce-with-logits":  # probabilities, 0 and 1 among them
        return params, rng.normal(size=(n, n_in)), rng.uniform(size=(n, n_out)).round(1)
    return params, rng.normal(size=(n, n_in)), 2.0 * rng.normal(size=(n, n_out))


@pytest.mark.parametrize("spec_name,loss", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_backend_gradients_match_numpy(backend, spec_name: str, loss: str, seed: int) -> None:
    spec = SPECS[spec_name]
    params, X, y = random_case(spec, seed, loss=loss)
    reference = get_backend("numpy")(spec, dtype="float64", loss=loss, huber_delta=0.7)
    tested = backend(spec, dtype="float64", loss=loss, huber_delta=0.7)
    reference.set_params(params)
    tested.set_params(params)
    expected_loss, expected = reference.loss_and_grads(X, y)
    actual_loss, actual = tested.loss_and_grads(X, y)
    assert_close(actual_loss, expected_loss, dtype="float64", what=f"{tested.name} {loss} loss")
    assert_close(tested.loss(X, y), expected_loss, dtype="float64", what=f"{tested.name} {loss} loss()")
    for name in expected:
        assert_close(actual[name], expected[name], dtype="float64", what=f"{tested.name} d{loss}/d{name}")


@pytest.mark.parametrize("spec_name,loss", CASES)
def test_numpy_gradients_match_central_differences(spec_name: str, loss: str) -> None:
    spec = SPECS[spec_name]
    params, X, y = random_case(spec, seed=3, loss=loss)
    model = get_backend("numpy")(spec, dtype="float64", loss=loss, huber_delta=0.7)
    model.set_params(params)
    _, grads = model.loss_and_grads(X, y)
    eps = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            shifted = {key: v.copy() for key, v in params.items()}
            shifted[name][index] = value[index] + eps
            model.set_params(shifted)
            up = model.loss(X, y)
            shifted[name][index] = value[index] - eps
            model.set_params(shifted)
            down = model.loss(X, y)
            numeric[index] = (up - down) / (2 * eps)
        assert_close(grads[name], numeric, dtype="float64", what=f"d{loss}/d{name} vs finite differences",
                     rtol=1e-5, atol=1e-7)  # central differences carry O(eps²) and rounding/eps error
