"""check_backend: the common checks every backend passes, for one written elsewhere (in the spirit of
scikit-learn's check_estimator). One call runs them all and names each that fails:

    from backend_compare.backends.check import check_backend
    check_backend(MyBackend)        # or, in pytest, the `check_backend` fixture
    check_backend(MxnetBackend, allow=["mxnet-float32-hyperparameters", "mxnet-adam-beta2"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .base import Backend, error_line
from .spec import mlp_spec, param_shapes
from .testing import allowed_tolerance

SPEC = mlp_spec(2, (3,), 1, "tanh")
GRADIENT_RTOL, GRADIENT_ATOL = 1e-6, 1e-9  # central differences with step 1e-6, float64


def _params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0.0, 0.5, size=shape) for name, shape in param_shapes(SPEC).items()}


def _data(rows: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(rows, 2))
    return X, np.sin(X.sum(axis=1, keepdims=True))


def parameter_round_trip(cls: type[Backend]) -> None:
    model, params = cls(SPEC, dtype="float64"), _params(0)
    model.set_params(params)
    for name, value in params.items():
        np.testing.assert_array_equal(model.get_params()[name], value, err_msg=name)


def gradients_against_finite_differences(cls: type[Backend]) -> None:
    model, params = cls(SPEC, dtype="float64"), _params(2)
    X, y = _data(8)
    model.set_params(params)
    _, grads = model.loss_and_grads(X, y)
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = {**params, name: value.copy()}
                moved[name][index] += sign * 1e-6
                model.set_params(moved)
                numeric[index] += sign * model.loss(X, y) / 2e-6
        np.testing.assert_allclose(grads[name], numeric, rtol=GRADIENT_RTOL, atol=GRADIENT_ATOL, err_msg=name)


def _trained(cls: type[Backend], optimizer: str, loss: str) -> dict[str, np.ndarray]:
    model = cls(SPEC, dtype="float64", optimizer=optimizer, lr=2**-5, loss=loss)
    model.set_params(_params(3))
    X, y = _data()
    return model.fit(X, y, epochs=3, batch_size=8, seed=4).get_params()


def parity_with_numpy(cls: type[Backend], allow: Sequence[str] = ()) -> None:
    """float64 at the suite's tolerance (testing.TOLERANCES), widened only by named allowances."""
    from .numpy_backend import NumpyBackend

    tolerance = allowed_tolerance("float64", [getattr(cls, "name", cls.__name__), "numpy"], allow)
    for optimizer in ("sgd", "momentum", "adam"):
        for loss in ("mse", "huber"):
            theirs, ours = _trained(cls, optimizer, loss), _trained(NumpyBackend, optimizer, loss)
            for name in ours:
                np.testing.assert_allclose(theirs[name], ours[name], rtol=tolerance["rtol"],
                                           atol=tolerance["atol"], err_msg=f"{optimizer}, {loss}: {name}")


def determinism(cls: type[Backend]) -> None:
    first, second = _trained(cls, "adam", "mse"), _trained(cls, "adam", "mse")
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def bad_input_rejected(cls: type[Backend]) -> None:
    def refused(what: str, call: Callable[[], object]) -> None:
        try:
            call()
        except ValueError:
            return
        raise AssertionError(f"{what} was accepted; a ValueError naming it was expected")

    model = cls(SPEC, dtype="float64")
    refused("X of the wrong width", lambda: model.predict(np.ones((3, 5))))
    refused("a missing parameter", lambda: model.set_params({"0.weight": np.ones((3, 2))}))
    refused("lr=0", lambda: cls(SPEC, lr=0))
    refused("X with NaN", lambda: model.predict(np.full((2, 2), np.nan)))


CHECKS: dict[str, Callable[..., None]] = {
    "parameter round trip": parameter_round_trip,
    "gradients against finite differences": gradients_against_finite_differences,
    "parity with the numpy backend": parity_with_numpy,
    "determinism": determinism,
    "bad input rejected": bad_input_rejected,
}


def check_backend(cls: type[Backend], allow: Sequence[str] = ()) -> None:
    """Run every check on `cls`; an AssertionError names each that fails and why. `allow` names known,
    documented differences (backends.testing.ALLOWANCES) that widen the parity check for this backend."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"check_backend takes a Backend subclass; received: {cls!r}")
    failures = []
    for name, check in CHECKS.items():
        try:
            check(cls, allow) if check is parity_with_numpy else check(cls)
        except Exception as err:
            failures.append(f"{name}: {error_line(err)}")
    if failures:
        raise AssertionError(f"{cls.__name__} fails {len(failures)} of {len(CHECKS)} checks: " + "; ".join(failures))
