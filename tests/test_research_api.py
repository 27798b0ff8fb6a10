"""The research API as NumPy users call it: optimiser state, NumPy scalars, copies of their arrays."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from backend_compare import OPTIMIZERS, mlp_spec, param_shapes
from backend_compare.optimizers import Training, support

SPEC = mlp_spec(2, (4,), 1, "tanh")
RNG = np.random.default_rng(3)
X, Y = RNG.normal(size=(24, 2)), RNG.normal(size=(24, 1))
START = {name: RNG.normal(0.0, 0.5, size=shape) for name, shape in param_shapes(SPEC).items()}


def trained(model, epochs: int = 2) -> tuple[dict, np.ndarray]:  # type: ignore[no-untyped-def]
    model.fit(X, Y, epochs=epochs, batch_size=8, seed=1)
    return model.get_params(), model.loss_history_.copy()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_loading_parameters_restarts_the_optimiser(backend, optimizer: str) -> None:
    lr = 1.0 if optimizer == "adadelta" else 0.05  # MXNet's AdaDelta has no learning rate: torch's default, 1
    refused = support.refuses(backend.framework, Training(optimizer, lr), "float64")
    if refused is not None:  # MXNet has no AdamW: refused by name, whatever else the test would check
        with pytest.raises(ValueError, match=re.escape(refused)):
            backend(SPEC, dtype="float64", optimizer=optimizer, lr=lr)
        return
    model = backend(SPEC, dtype="float64", optimizer=optimizer, lr=lr)
    model.set_params(START)
    first_params, first_history = trained(model)
    _, continued_history = trained(model)  # fit continues: state kept, history extended
    assert len(continued_history) == 2 * len(first_history)
    np.testing.assert_array_equal(continued_history[: len(first_history)], first_history)
    model.set_params(START)  # restarts: no momentum, moments or step count carried over
    again_params, again_history = trained(model)
    np.testing.assert_array_equal(again_history, first_history)
    for name in START:
        np.testing.assert_array_equal(again_params[name], first_params[name])
    fresh = backend(SPEC, dtype="float64", optimizer=optimizer, lr=lr)
    fresh.set_params(START)
    np.testing.assert_array_equal(trained(fresh)[1], first_history)
    if optimizer != "sgd":  # with state, continuing differs from restarting
        model.set_params(first_params)
        assert not np.array_equal(trained(model)[1], continued_history[len(first_history):])


def test_native_init_restarts_the_optimiser(backend) -> None:
    model = backend(SPEC, dtype="float64", optimizer="adam", lr=0.05)
    model.native_init(7)
    first = trained(model)[1]
    model.native_init(7)
    np.testing.assert_array_equal(trained(model)[1], first)


def test_numpy_scalars_and_zero_d_arrays_are_accepted(backend) -> None:
    model = backend(SPEC, lr=np.float32(0.01), momentum=np.array(0.5), weight_decay=np.float64(0.0),
                    huber_delta=np.int64(1))
    model.fit(X, Y, epochs=np.int64(2), batch_size=np.array(8), seed=np.uint8(3), shuffle=np.bool_(True))
    assert model.lr == pytest.approx(0.01) and len(model.loss_history_) == 6
    with pytest.raises(ValueError, match=r"epochs must be a positive integer; received: 2\.0"):
        model.fit(X, Y, epochs=np.float64(2.0))


def test_load_copies_the_callers_arrays(backend) -> None:
    data = X.copy()
    model = backend(SPEC, dtype="float64")
    model.set_params(START)
    model.load(data, Y)
    before = model.training_loss()
    data[:] = 1e3  # the caller reuses its buffer
    assert model.training_loss() == before


def test_read_only_input_gives_no_warning(backend) -> None:
    frozen_X, frozen_Y = X.copy(), Y.copy()
    frozen_X.flags.writeable = frozen_Y.flags.writeable = False
    model = backend(SPEC, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # MXNet's nd.array looks up scipy.sparse.csr on every call, which SciPy marks deprecated: its noise
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet\.")
        model.fit(frozen_X, frozen_Y, epochs=1, batch_size=8)
        model.predict(frozen_X)
        model.loss_and_grads(frozen_X, frozen_Y)


def test_values_beyond_float32_are_refused_by_name(backend) -> None:
    model = backend(SPEC)
    with pytest.raises(ValueError, match=r"X must fit in float32 \(largest magnitude 3.4e\+38\); received a value "
                                         r"beyond it at index \(1, 0\)"):
        model.predict(np.array([[0.0, 0.0], [1e39, 0.0]]))
    with pytest.raises(ValueError, match=r"params\['0.bias'\] must fit in float32"):
        model.set_params({**START, "0.bias": np.full(4, 1e300)})


def test_misuse_is_a_value_error_naming_what_is_wrong(backend) -> None:
    model = backend(SPEC, dtype="float64")
    with pytest.raises(ValueError, match=r"^step and train_epoch need the training set: call load\(X, y\) or fit"):
        model.step(np.arange(4))
    with pytest.raises(ValueError, match=r"^training_loss needs the training set"):
        model.training_loss()
    with pytest.raises(ValueError, match=r"^X must have at least one row; received shape \(0, 2\)$"):
        model.fit(X[:0], Y[:0])
    with pytest.raises(ValueError, match=r"^X must have at least one row"):
        model.predict(X[:0])
    with pytest.raises(ValueError, match=r"^X must be a NumPy array; received list"):
        model.fit(X.tolist(), Y)
    with pytest.raises(ValueError, match=r"^y must be a NumPy array; received list"):
        model.loss_and_grads(X, Y.tolist())
