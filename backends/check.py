"""check_backend: the common checks every backend passes, for one written elsewhere (in the spirit of
scikit-learn's check_estimator). One call runs them all and names each that fails:

    from backend_compare.backends.check import check_backend
    check_backend(MyBackend)        # or, in pytest, the `check_backend` fixture
    check_backend(MxnetBackend, allow=["mxnet-float32-hyperparameters", "mxnet-adam-beta2"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..layers import Layer, input_shapes, layer_types, make_spec, mlp_spec, param_shapes
from .base import MODES, Backend
from .errors import error_line
from .tolerances import ALLOWANCES, allowed_tolerance

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

    tolerance = allowed_tolerance("float64", [getattr(cls, "name", cls.__name__), "numpy"], allow,
                                  [layer.label for layer in SPEC])
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


def _close(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    """assert_allclose with a one-line message that says first what differs."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape or not np.allclose(actual, expected, rtol=rtol, atol=atol):
        gap = np.max(np.abs(actual - expected)) if actual.shape == expected.shape else "shape"
        raise AssertionError(f"{what} differs (largest difference {gap}; rtol {rtol:g}, atol {atol:g})")


def _example_data(spec: Sequence[Layer], rows: int = 6) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from ..layers import first_layer, input_shape, out_features

    rng = np.random.default_rng(5)
    X = first_layer(tuple(spec))[1].example_input(rng, (rows, *input_shape(tuple(spec))))
    y = rng.normal(size=(rows, out_features(tuple(spec))))
    params = {name: rng.normal(0.0, 0.5, size=shape) for name, shape in param_shapes(tuple(spec)).items()}
    return X, y, params


def declared_layers(cls: type[Backend], allow: Sequence[str] = ()) -> None:
    """Every layer type the backend declares it builds: each of the type's example models gives the NumPy
    backend's loss and gradients (float64) from the same parameters, and after two steps its parameters,
    state and evaluation loss (within the named allowances)."""
    from .numpy_backend import NumpyBackend

    pair = [getattr(cls, "name", cls.__name__), "numpy"]
    for kind in cls.layer_kinds():
        for example in layer_types()[kind].examples():
            spec = make_spec(example)
            if any(cls.cannot_build(layer, shape) for layer, shape in zip(spec, input_shapes(spec), strict=True)):
                continue  # an option its framework's layer cannot take: refused when asked for, by name
            # Allowances of one layer (a framework's gelu) widen this example's checks only where it has one,
            # its forward and gradients too; the others widen what two steps move.
            labels = [layer.label for layer in spec]
            tolerance = allowed_tolerance("float64", pair, allow, labels)
            exact = allowed_tolerance("float64", pair, [name for name in allow if ALLOWANCES[name].layers], labels)
            X, y, params = _example_data(spec)
            ours, theirs = NumpyBackend(spec, dtype="float64", lr=2**-5), cls(spec, dtype="float64", lr=2**-5)
            ours.set_params(params)
            theirs.set_params(params)
            (loss_a, grads_a), (loss_b, grads_b) = ours.loss_and_grads(X, y), theirs.loss_and_grads(X, y)
            where = ", ".join(layer.describe() for layer in spec)
            _close(np.asarray(loss_b), np.asarray(loss_a), f"{kind} in [{where}]: the loss", **exact)
            for name in grads_a:
                _close(grads_b[name], grads_a[name], f"{kind} in [{where}]: the gradient of {name}", **exact)
            # Two training steps (the layers' state updated), then the loss in evaluation mode (read from it).
            for model in (ours, theirs):
                model.load(X, y)
                model.train_epoch([np.arange(3), np.arange(3, len(X))])
            for name, value in {**ours.get_params(), **ours.get_state()}.items():
                _close({**theirs.get_params(), **theirs.get_state()}[name], value,
                       f"{kind} in [{where}]: {name} after two steps", **tolerance)
            _close(np.asarray(theirs.loss(X, y)), np.asarray(ours.loss(X, y)),
                   f"{kind} in [{where}]: the evaluation loss after two steps", **tolerance)


def declared_modes(cls: type[Backend]) -> None:
    """Every mode the backend declares runs its step and trains as its eager mode does (float64)."""
    unknown = [mode for mode in cls.modes if mode not in MODES]
    if unknown or cls.usual_mode not in cls.modes:
        raise AssertionError(f"modes must be among {', '.join(MODES[1:])} and include usual_mode "
                             f"{cls.usual_mode!r}; declared: {cls.modes}")
    X, y = _data()
    trained = {}
    for mode in cls.modes:
        model = cls(SPEC, dtype="float64", mode=mode, lr=2**-5)
        model.set_params(_params(3))
        trained[mode] = model.fit(X, y, epochs=2, batch_size=8, seed=4).get_params()
    first = cls.modes[0]
    for mode, params in trained.items():
        for name in params:
            _close(params[name], trained[first][name], f"mode {mode} against {first}: {name}")


def declared_replay(cls: type[Backend]) -> None:
    """A backend that declares the replay hooks (explain needs them) gives every layer's output and its
    optimiser state, and continues from a state it is given exactly as from its own."""
    if not cls.replay:
        return
    X, y = _data(8)
    model = cls(SPEC, dtype="float64", optimizer="adam", lr=2**-5)
    model.set_params(_params(3))
    model.load(X, y)
    outputs = model.forward_activations(X)
    if len(outputs) != len(SPEC):
        raise AssertionError(f"forward_activations gave {len(outputs)} outputs for a model of {len(SPEC)} layers")
    _close(outputs[-1], model.predict(X), "forward_activations' last output against predict", rtol=1e-12)
    model.step(np.arange(8))
    params, state = model.get_params(), model.get_optimizer_state()
    model.step(np.arange(4))
    expected = model.get_params()
    model.set_params(params)
    model.set_optimizer_state(state)
    model.step(np.arange(4))
    for name, value in model.get_params().items():
        _close(value, expected[name], f"{name} after a step from a restored optimiser state", rtol=1e-12, atol=1e-15)


CHECKS: dict[str, Callable[..., None]] = {
    "parameter round trip": parameter_round_trip,
    "gradients against finite differences": gradients_against_finite_differences,
    "parity with the numpy backend": parity_with_numpy,
    "determinism": determinism,
    "bad input rejected": bad_input_rejected,
    "the layer types it declares": declared_layers,
    "the modes it declares": declared_modes,
    "the replay hooks it declares": declared_replay,
}


def check_backend(cls: type[Backend], allow: Sequence[str] = ()) -> None:
    """Run every check on `cls`, each declared capability (layer types, modes, replay hooks) included; an
    AssertionError names each that fails and why. `allow` names known,
    documented differences (backends.testing.ALLOWANCES) that widen the parity check for this backend."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"check_backend takes a Backend subclass; received: {cls!r}")
    failures = []
    for name, check in CHECKS.items():
        try:
            check(cls, allow) if check in (parity_with_numpy, declared_layers) else check(cls)
        except Exception as err:
            failures.append(f"{name}: {error_line(err)}")
    if failures:
        raise AssertionError(f"{cls.__name__} fails {len(failures)} of {len(CHECKS)} checks: " + "; ".join(failures))
