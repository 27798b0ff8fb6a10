"""Dropout: masks drawn once in NumPy and given to every framework, so dropout runs stay comparable step by step;
with --init native each framework's own dropout and random state; bad rates refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.layers import Dropout, Linear, Residual
from backend_compare.layers.text import parse_layers

BACKENDS = ["numpy", "torch", "mxnet", "jax", "tensorflow"]


def test_a_mask_follows_its_seed_position_and_step_and_scales_what_it_keeps() -> None:
    layer = Dropout(0.3, seed=7)
    mask = layer.keep_mask(2, 5, 1000, (4, 5), "float32")
    assert mask.shape == (1000, 4, 5) and mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, np.float32(1) / np.float32(0.7)}
    assert abs((mask > 0).mean() - 0.7) < 0.01
    np.testing.assert_array_equal(mask, layer.keep_mask(2, 5, 1000, (4, 5), "float32"))  # drawn, not stateful
    for other in (layer.keep_mask(2, 6, 1000, (4, 5), "float32"), layer.keep_mask(3, 5, 1000, (4, 5), "float32"),
                  Dropout(0.3, seed=8).keep_mask(2, 5, 1000, (4, 5), "float32")):
        assert (other != mask).any()
    wide = layer.keep_mask(2, 5, 1000, (4, 5), "float64")  # the same draws kept in either dtype
    np.testing.assert_array_equal(wide > 0, mask > 0)
    assert np.all(Dropout(0.0).keep_mask(0, 0, 3, (2,), "float64") == 1.0)


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_multiplies_by_the_steps_mask_in_training_and_not_in_evaluation(name: str) -> None:
    spec = [Dropout(0.4, seed=2), Linear(6, 1)]
    model = get_backend(name)(spec, dtype="float64", lr=0.1)
    model.set_params({"1.weight": np.full((1, 6), 0.5), "1.bias": np.zeros(1)})
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 6)), rng.normal(size=(8, 1))
    model.load(X, y)
    for step in range(3):  # the dropout layer comes first: its output is X times the mask, exactly
        np.testing.assert_array_equal(model.forward_activations(X)[0], X * spec[0].keep_mask(0, step, 8, (6,),
                                                                                               "float64"))
        model.step(np.arange(8))
    weight = model.get_params()["1.weight"]
    np.testing.assert_allclose(model.predict(X), X @ weight.T + model.get_params()["1.bias"], rtol=1e-14)


@pytest.mark.parametrize("name", BACKENDS)
def test_native_masks_come_from_the_frameworks_own_dropout_and_set_params_shares_them_again(name: str) -> None:
    spec = [Dropout(0.3), Linear(6, 1)]
    model = get_backend(name)(spec, dtype="float32")
    ones = np.ones((4000, 6), dtype=np.float32)
    model.native_init(3)
    first, second = model.forward_activations(ones)[0], model.forward_activations(ones)[0]
    assert set(np.unique(first)) <= {0.0, np.float32(1) / np.float32(0.7), np.float32(1 / 0.7)}
    assert abs((first > 0).mean() - 0.7) < 0.02
    assert (first != second).any()  # drawn from the framework's random state, which moves on
    shared = spec[0].keep_mask(0, 0, 4000, (6,), "float32")
    assert (first != shared).any()
    assert "dropout: masks from" in model.native_init_text()
    model.set_params(model.get_params())
    np.testing.assert_array_equal(model.forward_activations(ones)[0], shared)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_a_replayed_step_takes_the_masks_of_that_step(name: str) -> None:
    spec = [Linear(4, 8), Dropout(0.5, seed=1), Linear(8, 1)]
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 1))
    start = get_backend("numpy")(spec, dtype="float64").get_params()
    trained, replayed = (get_backend(name)(spec, dtype="float64", optimizer="adam", lr=0.01) for _ in range(2))
    batches = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)]
    for model in (trained, replayed):
        model.set_params(start)
        model.load(X, y)
    trained.train_epoch(batches[:2])
    before = trained.get_params()
    trained.step(batches[2])
    replayed.train_epoch(batches[:2])
    change, _ = replayed.update_for(batches[2])
    for key, value in change.items():
        np.testing.assert_allclose(value, trained.get_params()[key] - before[key], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(replayed.get_params()[key], before[key])  # update_for keeps nothing


def test_a_dropout_cnn_trains_alike_on_every_backend_in_float64(cli) -> None:
    layers = "conv2d(4, 3), relu, dropout(0.3), flatten, dropout(0.1), linear(10)"
    ran = cli("--task", "cnn", "--layers", layers, "--dtype", "float64", "--epochs", "2", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["settings"]["layers"] == layers
    for row in report["parity"]:
        assert row["verdict"] == "within tolerance", row
        if "mxnet" not in (row["backend_a"], row["backend_b"]):  # MXNet: lr in float32, its named allowance
            assert row["max_abs_param_diff"] < 1e-12 and row["max_abs_step_loss_diff"] < 1e-12, row


@pytest.mark.parametrize("text,message", [
    ("flatten, dropout(1), linear(10)", "layer 2 dropout(1): dropout rate must be a number in [0, 1) (the share of "
                                        "values zeroed); received: 1"),
    ("flatten, dropout(-0.1), linear(10)", "received: -0.1"),
    ("flatten, dropout, linear(10)", "layer 2 dropout: dropout takes its rate alone"),
    ("flatten, dropout(0.5, seed=3), linear(10)", "dropout takes its rate alone (its masks follow the run's seed)"),
    ("flatten, linear(8), add(linear(8), dropout(0.5)), linear(10)",
     "add does not take dropout in its branch (yet): dropout(0.5); put it before or after add"),
])
def test_a_bad_dropout_is_named_by_position(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_layers(text, (1, 8, 8))
    assert message in str(raised.value), str(raised.value)


def test_a_bad_rate_on_the_command_line_is_one_line_and_exit_2(cli) -> None:
    ran = cli("--task", "cnn", "--layers", "flatten, dropout(1.5), linear(10)")
    assert ran.code == 2 and ran.err == ("compare.py: error: layer 2 dropout(1.5): dropout rate must be a number in "
                                         "[0, 1) (the share of values zeroed); received: 1.5\n"), ran.err
    with pytest.raises(ValueError, match="add does not take dropout"):
        Residual((Linear(4, 4), Dropout(0.5)))


def test_the_mask_scales_as_torchs_dropout_does_on_a_cpu() -> None:
    """F.dropout divides its mask by 1 − p in the tensor's dtype (aten/src/ATen/native/Dropout.cpp:81): at p = 0.15
    float32 gives 1.1764705, one ulp below 1/(1 − p) rounded once."""
    get_backend("torch")
    import torch

    torch.manual_seed(0)
    dropped = torch.nn.functional.dropout(torch.ones(1000), 0.15, training=True).numpy()
    ours = Dropout(0.15).keep_mask(0, 0, 1000, (), "float32")
    assert set(np.unique(ours)) == set(np.unique(dropped)) == {0.0, np.float32(1.1764705)}


@pytest.mark.parametrize("name", ["numpy", "mxnet", "tensorflow"])
def test_native_masks_are_not_drawn_from_the_initial_weights_numbers(name: str) -> None:
    """These frameworks initialise and drop out from one kind of generator: seeded alike, the first mask would keep
    exactly where the first weights are positive."""
    agreement = []
    for seed in range(12):
        model = get_backend(name)([Dropout(0.5), Linear(6, 6), Linear(6, 1)], dtype="float32")
        model.native_init(seed)
        mask = model.forward_activations(np.ones((6, 6), dtype=np.float32))[0] > 0
        agreement.append(np.mean(mask == (model.get_params()["1.weight"] > 0)))
    assert 0.3 < np.mean(agreement) < 0.7, agreement


def test_a_task_draws_the_mask_seed_last_and_keeps_one_given() -> None:
    from backend_compare.layers import Conv2d, Flatten
    from backend_compare.tasks import get_task

    cnn = get_task("cnn")
    plain = cnn.make_problem(seed=0, epochs=1, layers="conv2d(2, 3), flatten, linear(10)")
    dropped = cnn.make_problem(seed=0, epochs=1, layers="conv2d(2, 3), dropout(0), flatten, linear(10)")
    np.testing.assert_array_equal(np.concatenate(plain.epoch_batches[0]), np.concatenate(dropped.epoch_batches[0]))
    drawn = dropped.spec[2]
    assert isinstance(drawn, Dropout) and drawn.seed is not None
    assert cnn.make_problem(seed=1, epochs=1, layers="conv2d(2, 3), dropout(0), flatten, linear(10)").spec[2] != drawn
    given = cnn.make_problem(seed=0, epochs=1, layers=[Conv2d(1, 2, 3), Dropout(0.5, seed=3), Flatten(),
                                                      Linear(72, 10)])
    assert given.spec[2] == Dropout(0.5, seed=3)
