"""Reduced precision: bfloat16 and float16 throughout (--dtype), and each framework's mixed precision (--precision),
trained with the framework's own machinery and measured against a float64 trajectory computed by hand; loss
scaling's trajectory; refusals named with their source."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from backend_compare import mlp_spec
from backend_compare.backends.precision import NUMERICS, numerics_of, refuses
from backend_compare.cli import prepare
from backend_compare.cli import run as run_command
from backend_compare.comparison.numerics import shadow_result
from backend_compare.comparison.saved import load_run
from backend_compare.layers import Activation, Dropout, Embedding, Flatten, Input, Linear
from tests.conftest import RunCli, load_backend

FRAMEWORKS = ("torch", "jax", "tensorflow")  # the backends that run every numerics
SPEC = mlp_spec(3, (8,), 2, "tanh")
RNG = np.random.default_rng(5)
X, Y = RNG.normal(size=(48, 3)), RNG.normal(size=(48, 2))
LOW = [("bfloat16", None), ("float16", None), ("float32", "mixed-bfloat16"), ("float32", "mixed-float16")]
# Measured after 4 epochs of SGD (lr 0.05, batch 16) against the float64 trajectory, relative to each parameter's
# largest: the error each numerics is known for, with a margin, and a floor it must exceed (it really ran low).
BOUNDS = {"bfloat16": (3e-3, 8e-2), "float16": (3e-4, 1e-2), "mixed-bfloat16": (2e-5, 2e-3),
          "mixed-float16": (2e-6, 3e-4)}


def start() -> dict[str, np.ndarray]:
    return load_backend("numpy")(SPEC, dtype="float64").get_params()


def trained(name: str, dtype: str, precision: str | None) -> object:
    model = load_backend(name)(SPEC, dtype=dtype, precision=precision, lr=0.05)
    model.set_params(start())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's autocast on the CPU warns about float16 once
        model.fit(X, Y, epochs=4, batch_size=16)
    return model


@pytest.fixture(scope="module")
def shadow() -> dict[str, np.ndarray]:
    model = load_backend("numpy")(SPEC, dtype="float64", lr=0.05)
    model.set_params(start())
    return model.fit(X, Y, epochs=4, batch_size=16).get_params()


def relative_error(params: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(params[k] - truth[k])) / np.max(np.abs(truth[k]))) for k in truth)


@pytest.mark.parametrize(("dtype", "precision"), LOW)
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_low_precision_trains_with_the_error_its_numerics_have(name: str, dtype: str, precision: str | None,
                                                               shadow: dict[str, np.ndarray]) -> None:
    model = trained(name, dtype, precision)
    label = precision or dtype
    floor, ceiling = BOUNDS[label]
    error = relative_error(model.get_params(), shadow)
    assert floor < error < ceiling, f"{name} {label}: {error:.2e} outside ({floor:g}, {ceiling:g})"
    params = model.get_params()
    assert all(value.dtype == np.float32 for value in params.values())
    compute = label.removeprefix("mixed-")
    held = ml_dtypes.bfloat16 if compute == "bfloat16" else np.float16
    exact = all(np.array_equal(value, value.astype(held).astype(np.float32)) for value in params.values())
    assert exact == (precision is None), "pure: every parameter a value of the low dtype; mixed: float32 ones"
    assert model.computed_in(X[:4]) == [compute] * 3
    assert np.isfinite(model.predict(X[:4])).all() and model.predict(X[:4]).dtype == np.float32


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_float32_runs_as_before(name: str, shadow: dict[str, np.ndarray]) -> None:
    model = trained(name, "float32", None)
    assert relative_error(model.get_params(), shadow) < 1e-5
    assert model.computed_in(X[:4]) == ["float32"] * 3
    assert not len(model.loss_scales_)


def test_loss_scaling_backs_off_alike_in_every_framework() -> None:
    """A loss of about 400 scaled by 2**16 overflows float16: torch's GradScaler, Keras's LossScaleOptimizer and
    jmp's DynamicLossScale each skip the step and halve the scale, the same number of times."""
    rng = np.random.default_rng(0)
    X_big, y_big = rng.normal(size=(8, 3)), 30 * rng.normal(size=(8, 2))
    spec = mlp_spec(3, (4,), 2, "tanh")
    first = load_backend("numpy")(spec, dtype="float64").get_params()
    for name in FRAMEWORKS:
        model = load_backend(name)(spec, dtype="float32", precision="mixed-float16", lr=0.01)
        model.set_params(first)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_big, y_big, epochs=5, batch_size=8, shuffle=False)
        assert model.loss_scales_.tolist() == [2.0**15, 2.0**14, 2.0**13, 2.0**13, 2.0**13], name
        losses = model.loss_history_
        assert losses[0] == losses[1] == losses[2] == losses[3] > losses[4], f"{name}: skipped steps"
        model.set_params(first)
        assert not len(model.loss_scales_), "new parameters start the record afresh"


@pytest.mark.parametrize("numerics", NUMERICS[2:])
def test_numpy_and_mxnet_refuse_low_precision_by_name(numerics: str) -> None:
    dtype, precision = (numerics, None) if not numerics.startswith("mixed") else ("float32", numerics)
    for name, source in (("numpy", "float64 shadow"), ("mxnet", "(src|mxnet)/")):
        with pytest.raises(ValueError, match=f"the {name} backend cannot run {numerics}; .*{source}"):
            load_backend(name)(SPEC, dtype=dtype, precision=precision)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "rmsprop"])
def test_float16_refuses_an_epsilon_it_holds_as_zero(optimizer: str) -> None:
    reason = refuses("torch", numerics_of("float16"), optimizer)
    assert reason is not None and "ε = 1e-8 is 0 in float16" in reason and "--precision mixed-float16" in reason
    assert refuses("torch", numerics_of("float32", "mixed-float16"), optimizer) is None
    assert refuses("torch", numerics_of("float16"), "adagrad") is None


def test_keras_adam_in_bfloat16_is_refused_for_its_beta2_of_one() -> None:
    reason = refuses("tensorflow", numerics_of("bfloat16"), "adam")
    assert reason is not None and "adam.py:110-111" in reason and "holds as 1" in reason
    assert refuses("torch", numerics_of("bfloat16"), "adam") is None
    assert float(np.asarray(0.999, dtype=ml_dtypes.bfloat16)) == 1.0  # the finding itself


@pytest.mark.parametrize(("dtype", "precision", "message"), [
    ("float64", "mixed-bfloat16", "keeps the parameters in float32: give dtype float32"),
    ("bfloat16", "mixed-float16", "received dtype bfloat16"),
    ("float32", "mixed-float8", "precision must be one of mixed-bfloat16, mixed-float16"),
    ("float8", None, "dtype must be one of float32, float64, bfloat16, float16"),
])
def test_bad_numerics_are_one_line_errors(dtype: str, precision: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_backend("torch")(SPEC, dtype=dtype, precision=precision)


def test_a_bfloat16_run_reports_its_shadow_and_its_layers(cli: RunCli, tmp_path: Path) -> None:
    result = cli("--task", "mlp", "--dtype", "bfloat16", "--epochs", "3", "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert "skipping backend 'numpy': cannot run bfloat16" in result.err
    assert "skipping backend 'mxnet': cannot run bfloat16" in result.err
    report = load_run(str(tmp_path / "run"))  # the saved results, checked against results.schema.json
    assert report["options"]["dtype"] == "bfloat16"
    shadow = {row["backend"]: row for row in report["shadow"]}
    assert set(shadow) == set(FRAMEWORKS) and all(row["status"] == "ok" for row in shadow.values())
    assert all(1e-4 < row["param_error"] < 1 for row in shadow.values()), shadow  # bfloat16's, not float32's
    assert {(row["backend"], row["dtype"]) for row in report["layers"]} == {(name, "bfloat16") for name in FRAMEWORKS}
    assert {row["tolerance"] for row in report["parity"]} == {"bfloat16"}
    assert not report["loss_scale"]
    assert "Against the float64 shadow" in result.out and "task mlp · seed 0 · bfloat16 ·" in result.out


def test_a_mixed_float16_run_shows_which_layers_ran_low_and_its_loss_scale(cli: RunCli) -> None:
    result = cli("--task", "mlp", "--precision", "mixed-float16", "--epochs", "2", "--backends", ",".join(FRAMEWORKS),
                 "--format", "json", "--check")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    layers = {(row["backend"], row["layer"]): row["dtype"] for row in report["layers"]}
    for name in FRAMEWORKS:
        assert layers[(name, "parameters")] == "float32" and layers[(name, "0 linear(1, 13)")] == "float16"
    scales = {row["backend"]: row for row in report["loss_scale"]}
    assert set(scales) == set(FRAMEWORKS)
    assert all(row["initial_scale"] == 2.0**16 and row["skipped_steps"] == 0 for row in scales.values())
    assert report["parity_verdict"]["beyond"] == []
    assert all(row["param_error"] < 1e-2 for row in report["shadow"])


@pytest.mark.parametrize(("dtype", "precision"), [("bfloat16", None), ("float32", "mixed-float16")])
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_dropout_masks_are_made_in_the_dtype_the_layers_compute_in(name: str, dtype: str,
                                                                    precision: str | None) -> None:
    """A float32 mask would promote what it multiplies to float32 (torch, JAX) or fail (TensorFlow)."""
    spec = [Linear(3, 8), Activation("tanh"), Dropout(0.25, seed=1), Linear(8, 2)]
    model = load_backend(name)(spec, dtype=dtype, precision=precision)
    model.set_params(load_backend("numpy")(spec, dtype="float64").get_params())
    model.fit(X[:16], Y[:16], epochs=1, batch_size=8)
    compute = (precision or dtype).removeprefix("mixed-")
    assert model.computed_in(X[:4]) == [compute] * 4
    loss, grads = model.loss_and_grads(X[:4], Y[:4])
    assert np.isfinite(loss) and all(np.isfinite(grad).all() for grad in grads.values())


@pytest.mark.parametrize(("dtype", "lr", "held"), [("bfloat16", 1e-45, "0.0"), ("bfloat16", 1e39, "inf"),
                                                   ("float16", 1e5, "inf")])
def test_a_hyper_parameter_the_low_dtype_cannot_hold_is_refused(dtype: str, lr: float, held: str) -> None:
    with pytest.raises(ValueError, match=f"lr must be representable in {dtype} .*which {dtype} holds as {held}"):
        load_backend("torch")(SPEC, dtype=dtype, lr=lr)


def test_token_ids_and_data_a_low_dtype_cannot_hold_are_refused() -> None:
    tokens = [Input((4,)), Embedding(1000, 3), Flatten(), Linear(12, 2)]
    with pytest.raises(ValueError, match=r"layer 1 embedding.*token ids up to 999; bfloat16 holds whole numbers "
                                         "exactly only up to 256: use --precision mixed-bfloat16"):
        load_backend("torch")(tokens, dtype="bfloat16")
    load_backend("torch")(tokens, dtype="float32", precision="mixed-bfloat16")  # its inputs stay float32
    model = load_backend("jax")(SPEC, dtype="float16")
    with pytest.raises(ValueError, match=r"X must fit in float16 \(largest magnitude 6.55e\+04\); received a value of "
                                         r"1e\+05"):
        model.predict(np.full((2, 3), 1e5))
    with pytest.raises(ValueError, match=r"y must fit in float16 squared \(largest magnitude 256\)"):
        model.loss(X[:2], np.full((2, 2), 300.0))


def test_the_shadow_runs_on_the_cpu_whatever_the_device_asked(cli: RunCli) -> None:
    """NumPy computes on the CPU: a GPU run's shadow (and its float32 noise) is still trained there."""
    plan = prepare(["--task", "linreg", "--dtype", "bfloat16", "--epochs", "1", "--backends", "torch"], runners=False)
    shadow = shadow_result(plan.first, {**plan.options, "device": "cuda", "deterministic": True})
    assert shadow.status == "ok" and shadow.backend == "float64 shadow"


def test_a_shadow_that_cannot_train_is_said_and_the_rows_stay(cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise ValueError("X must hold token ids 0 to 9")

    monkeypatch.setattr(run_command, "shadow_result", broken)
    result = cli("--task", "linreg", "--dtype", "bfloat16", "--epochs", "1", "--backends", "torch,jax",
                 "--executor", "inline", "--format", "json")
    assert result.code == 0, result.err
    assert "no float64 shadow for seed 0: ValueError: X must hold token ids 0 to 9" in result.err
    assert not json.loads(result.out)["shadow"]


def test_the_layer_table_is_one_row_per_layer_over_seeds(cli: RunCli) -> None:
    result = cli("--task", "mlp", "--layers", "linear(8), tanh, dropout(0.2), linear(1)", "--precision",
                 "mixed-bfloat16", "--seeds", "2", "--epochs", "1", "--backends", "torch", "--executor", "inline",
                 "--format", "json")
    assert result.code == 0, result.err
    layers = [row["layer"] for row in json.loads(result.out)["layers"]]
    assert layers == ["parameters", "0 input(1)", "1 linear(1, 8)", "2 tanh", "3 dropout(0.2)", "4 linear(8, 1)"]
