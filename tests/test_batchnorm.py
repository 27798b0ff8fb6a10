"""Batch normalisation, where the frameworks part: each framework's own BatchNorm, aligned where it can be
(momentum's meaning, ε, two-pass variance) against the hand-derived NumPy layer, and the difference that no
option removes (torch keeps the unbiased variance in running_var) measured and refused by name."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.backends.tolerances import allowed_tolerance
from backend_compare.comparison.explain import Explainer
from backend_compare.layers import Activation, BatchNorm, Linear, make_spec
from backend_compare.tasks import get_task

N, MOMENTUM = 8, 0.75  # 0.75: exact in float32, so MXNet's float momentum (see its allowance) is not in play


def spec(unbiased: bool) -> tuple:
    return make_spec([Linear(3, 4), BatchNorm(4, momentum=MOMENTUM, eps=1e-3, unbiased_running_var=unbiased),
                      Activation("tanh"), Linear(4, 2)])


def convention(name: str) -> bool:
    return name == "torch"  # the one whose running_var keeps the unbiased variance


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    X = rng.normal(2.0, 3.0, size=(4 * N, 3))  # an offset: the batch mean matters
    y = rng.normal(size=(4 * N, 2))
    params = {"0.weight": rng.normal(size=(4, 3)), "0.bias": rng.normal(size=4),
              "1.weight": rng.uniform(0.5, 1.5, 4), "1.bias": rng.normal(size=4),
              "3.weight": rng.normal(size=(2, 4)), "3.bias": rng.normal(size=2)}
    return X, y, params


def trained(name: str, unbiased: bool, data: tuple, dtype: str = "float64") -> dict:
    X, y, params = data
    model = get_backend(name)(spec(unbiased), dtype=dtype, optimizer="momentum", lr=2**-4)
    model.set_params(params)
    before = model.get_state()
    loss, grads = model.loss_and_grads(X[:N], y[:N])
    unchanged = model.get_state()
    model.load(X, y)
    steps = model.train_epoch([np.arange(i, i + N) for i in range(0, 4 * N, N)])
    return {"loss": loss, "grads": grads, "state_before": before, "state_after_grads": unchanged, "steps": steps,
            "params": model.get_params(), "state": model.get_state(), "eval_loss": model.loss(X, y),
            "predict": model.predict(X[:5])}


def test_each_framework_matches_the_numpy_layer_in_its_own_convention(backend, data) -> None:
    unbiased = convention(backend.name)
    ours, theirs = trained("numpy", unbiased, data), trained(backend.name, unbiased, data)
    tolerance = allowed_tolerance("float64", [backend.name, "numpy"], ["mxnet-float32-hyperparameters"])
    assert theirs["state_before"] == {} or all(np.array_equal(theirs["state_before"][k], ours["state_before"][k])
                                               for k in ours["state_before"])
    np.testing.assert_allclose(theirs["loss"], ours["loss"], **tolerance)
    for name, grad in ours["grads"].items():  # training mode: batch statistics
        np.testing.assert_allclose(theirs["grads"][name], grad, **tolerance, err_msg=name)
    for name in ("1.running_mean", "1.running_var"):  # loss_and_grads leaves the running statistics alone
        np.testing.assert_array_equal(theirs["state_after_grads"][name], [0, 0, 0, 0] if "mean" in name else 1)
    np.testing.assert_allclose(theirs["steps"], ours["steps"], **tolerance)
    for name, value in {**ours["params"], **ours["state"]}.items():
        np.testing.assert_allclose({**theirs["params"], **theirs["state"]}[name], value, **tolerance, err_msg=name)
    np.testing.assert_allclose(theirs["eval_loss"], ours["eval_loss"], **tolerance)  # evaluation: running ones
    np.testing.assert_allclose(theirs["predict"], ours["predict"], **tolerance)


def test_the_numpy_layer_updates_its_running_statistics_as_the_formula_says(data) -> None:
    X, y, params = data
    for unbiased in (False, True):
        model = get_backend("numpy")(spec(unbiased), dtype="float64", lr=2**-4)
        model.set_params(params)
        model.load(X, y)
        model.train_epoch([np.arange(N)])
        hidden = X[:N] @ params["0.weight"].T + params["0.bias"]
        var = hidden.var(axis=0) * (N / (N - 1) if unbiased else 1.0)
        state = model.get_state()
        np.testing.assert_allclose(state["1.running_mean"], (1 - MOMENTUM) * hidden.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(state["1.running_var"], MOMENTUM + (1 - MOMENTUM) * var, rtol=1e-12)


def test_torch_keeps_the_unbiased_variance_and_is_refused_the_biased_convention(data) -> None:
    """The difference measured: torch's running_var moves by n/(n−1) times the biased one's step."""
    torch_run, biased = trained("torch", True, data), trained("numpy", False, data)
    unbiased = trained("numpy", True, data)
    np.testing.assert_allclose(torch_run["state"]["1.running_var"], unbiased["state"]["1.running_var"], rtol=1e-9)
    assert np.max(np.abs(torch_run["state"]["1.running_var"] - biased["state"]["1.running_var"])) > 1e-3
    with pytest.raises(ValueError, match=r"the torch backend cannot build layer 1 batchnorm\(4, momentum=0.75, "
                                         r"eps=0.001\); nn.BatchNorm1d and nn.BatchNorm2d keep the unbiased "
                                         r"batch variance"):
        get_backend("torch")(spec(False))
    for name in ("mxnet", "jax", "tensorflow"):
        with pytest.raises(ValueError, match=f"the {name} backend cannot build layer 1 .*biased batch variance"):
            get_backend(name)(spec(True))


def test_the_frameworks_defaults_differ_and_are_given_explicitly() -> None:
    """What each framework's BatchNorm does unless told: the reason the translators pass every option."""
    import keras
    from flax import nnx
    from mxnet import gluon
    from torch import nn

    def defaults(function: object, *names: str) -> tuple:
        parameters = inspect.signature(function.__init__).parameters  # type: ignore[misc]
        return tuple(parameters[name].default for name in names)

    assert defaults(nn.BatchNorm1d, "momentum", "eps") == (0.1, 1e-5)  # torch: the new batch's share
    assert defaults(gluon.nn.BatchNorm, "momentum", "epsilon") == (0.9, 1e-5)
    assert defaults(nnx.BatchNorm, "momentum", "epsilon", "use_fast_variance") == (0.99, 1e-5, True)
    assert defaults(keras.layers.BatchNormalization, "momentum", "epsilon") == (0.99, 1e-3)


def test_flax_fast_variance_loses_precision_that_two_passes_keep() -> None:
    """Flax's default variance, E[x²] − E[x]², cancels catastrophically on data far from zero in float32:
    the translator builds nnx.BatchNorm with use_fast_variance=False, the two-pass variance every other
    framework and the NumPy layer use."""
    import jax.numpy as jnp
    from flax import nnx

    x = np.random.default_rng(0).normal(1000.0, 0.01, size=(64, 1)).astype(np.float32)
    exact = np.var(x.astype(np.float64))
    found = {}
    for fast in (True, False):
        layer = nnx.BatchNorm(1, momentum=0.0, epsilon=1e-5, use_fast_variance=fast, rngs=nnx.Rngs(0))
        layer(jnp.asarray(x))
        found[fast] = float(layer.var.value[0])
    assert abs(found[False] - exact) < 1e-3 * exact
    assert abs(found[True] - exact) > 0.5 * exact


def test_the_mlp_task_takes_a_batchnorm_and_a_framework_that_cannot_is_named(cli, tmp_path) -> None:
    ran = cli("--task", "mlp", "--batchnorm", "biased", "--backends", "numpy,jax", "--epochs", "3",
              "--format", "json", "--dtype", "float64")
    assert ran.code == 0, ran.err
    refused = cli("--task", "mlp", "--batchnorm", "biased", "--backends", "numpy,torch", "--epochs", "3")
    assert refused.code == 2 and refused.err.startswith("compare.py: error: backend 'torch' cannot build layer 1 "
                                                       "batchnorm(13, momentum=0.9, eps=1e-05); nn.BatchNorm1d")
    one_row = cli("--task", "mlp", "--batchnorm", "unbiased", "--backends", "numpy,torch", "--batch-size", "12")
    assert one_row.code == 2 and one_row.err.endswith(  # 205 training rows: 17 batches of 12, then one of 1
        "needs at least 2 rows in every training batch; with 205 training rows and batches of 12 the last batch "
        "of each epoch has 1: choose another batch size\n"), one_row.err
    with pytest.raises(ValueError, match="with 205 training rows and batches of 12 the last batch of each epoch has 1"):
        get_task("mlp").make_problem(batchnorm="unbiased", batch_size=12)  # from Python too
    not_an_mlp = cli("--task", "linreg", "--batchnorm", "biased")
    assert not_an_mlp.code == 2 and "--batchnorm applies only to --task mlp or classifier" in not_an_mlp.err
    problem = get_task("mlp").make_problem(batchnorm="biased", epochs=1)  # explain replays the running statistics
    options = {"dtype": "float64", "lr": 0.1}
    findings = Explainer(problem, {name: get_backend(name)(problem.spec, **options) for name in ("numpy", "jax")},
                         options).run()
    assert [finding.agree for finding in findings] == [True]


def test_gluons_layer_trains_gamma_where_its_op_by_default_holds_it_at_one() -> None:
    """The legacy trap of models built on MXNet's BatchNorm op (mx.sym.BatchNorm): fix_gamma=True and eps=1e-3 by
    default, γ ignored whatever it holds; gluon.nn.BatchNorm(scale=True) passes fix_gamma=False and eps=1e-5."""
    get_backend("mxnet")
    from mxnet import gluon, nd

    x = np.random.default_rng(0).normal(size=(8, 3))
    gamma = np.array([2.0, 3.0, 4.0])
    arrays = [nd.array(value, dtype="float64") for value in (x, gamma, np.zeros(3), np.zeros(3), np.ones(3))]
    op = nd.BatchNorm(*arrays, use_global_stats=True).asnumpy()
    np.testing.assert_allclose(op, x / np.sqrt(1 + 1e-3), rtol=1e-9)  # γ = 1, ε = 1e-3
    assert gluon.nn.BatchNorm(in_channels=3)._kwargs["fix_gamma"] is False
    assert gluon.nn.BatchNorm(in_channels=3)._kwargs["eps"] == 1e-5


def test_a_batchnorm_after_a_convolution_normalises_each_channel_over_the_batch_and_positions() -> None:
    layer = BatchNorm(2, momentum=0.5)
    x = np.random.default_rng(1).normal(size=(4, 2, 3, 3)) * np.array([1.0, 5.0])[None, :, None, None]
    state = {"weight": np.ones(2), "bias": np.zeros(2), "running_mean": np.zeros(2), "running_var": np.ones(2)}
    out, _ = layer.forward(state, x, True)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) / (x.var(axis=(0, 2, 3)) + 1e-5))
    np.testing.assert_allclose(state["running_mean"], 0.5 * x.mean(axis=(0, 2, 3)))


def test_explain_names_mxnets_float32_momentum_in_the_running_statistics() -> None:
    problem = get_task("cnn").make_problem(seed=0, epochs=1, layers="conv2d(2, 3, padding=same), batchnorm, relu, "
                                                                    "flatten, linear(10)")
    options = {"dtype": "float64", "lr": 2**-4, "loss": "cross-entropy"}  # lr exact in 32 bits: only the momentum
    (finding,) = Explainer(problem, {name: get_backend(name)(problem.spec, **options) for name in ("numpy", "mxnet")},
                           options).run()
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "statistics")
    assert finding.cause.endswith("mxnet keeps 0.899999976 of the old value where numpy keeps 0.9: the momentum held "
                                  "in float32 (0.9 rounded to 32 bits)"), finding.cause
