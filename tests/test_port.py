"""check_port on real ports, as the frameworks' tutorials write the models (examples/ports/): each pair faithful
(agrees), with one convention left at its framework's default (found and named), and with one genuine bug (found at
its layer); the weights carried both ways; bad input; the command and the pytest assertion."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend_compare.porting import PortReport, assert_same_model, check_port
from backend_compare.porting.factories import load_factory
from tests.conftest import RunCli, load_backend

PORTS = Path(__file__).resolve().parents[1] / "examples" / "ports"
FRAMEWORKS = {"lenet_gluon": "mxnet", "lenet_torch": "torch", "vgg_keras": "tensorflow", "vgg_flax": "jax",
              "lm_torch": "torch", "lm_flax": "jax"}


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "lm":
        return rng.integers(0, 20, size=(6, 7)), rng.integers(0, 20, size=(6, 7))
    size = 28 if kind == "lenet" else 8
    return rng.normal(size=(16, 1, size, size)).astype(np.float32), rng.integers(0, 10, size=16)


def model(given: str) -> Any:
    """A model of examples/ports, FILE:FACTORY; the test is skipped where its framework is not installed."""
    load_backend(FRAMEWORKS[given.partition(":")[0]])
    file, _, factory = given.partition(":")
    return load_factory(f"{PORTS / file}.py:{factory}", "A")


@functools.cache
def checked(a: str, b: str, **options: Any) -> PortReport:
    X, y = _data(a.partition("_")[0])
    return check_port(model(a), model(b), X, y, loss="cross-entropy", lr=0.1, **options)


def _check(a: str, b: str, **options: Any) -> PortReport:
    load_backend(FRAMEWORKS[a.partition(":")[0]])
    load_backend(FRAMEWORKS[b.partition(":")[0]])
    return checked(a, b, **options)


@pytest.mark.parametrize(("a", "b", "layers"), [("lenet_gluon:lenet", "lenet_torch:lenet", 5),
                                                ("vgg_keras:vgg", "vgg_flax:vgg", 5),
                                                ("lm_torch:lm", "lm_flax:lm", 3)])
def test_a_faithful_port_agrees_in_both_modes_and_in_training(a: str, b: str, layers: int) -> None:
    report = _check(a, b)
    assert report.agrees, str(report)
    assert report.round_trip == "exact" and len(report.pairs) == layers and not report.conventions
    assert [item.mode for item in report.forward] == ["eval", "train"]
    assert all(row.agrees for item in report.forward for row in item.rows)
    assert report.training is not None and len(report.training.steps) == 3
    assert all(row.parameter_difference <= row.tolerance for row in report.training.steps)
    assert report.training.gradient_difference < 1e-4
    assert json.loads(report.to_json())["agrees"] is True
    assert "<html" in report.html() and "Port check" in report.html()


def test_gluon_batchnorm_against_torch_is_found_in_the_running_variance() -> None:
    report = _check("lenet_gluon:lenet_batchnorm", "lenet_torch:lenet_batchnorm")
    differing = [(item.kind, item.setting) for item in report.conventions]
    assert differing == [("batchnorm", "unbiased_running_var")] * 4
    assert all(item.agrees for item in report.forward)  # the running statistics part only once trained
    assert not report.agrees and report.training is not None
    assert "the state differs: 13.running_var" in (report.first_difference or "")
    assert "unbiased_running_var" in (report.first_difference or "")


def test_a_missing_bias_is_named_at_its_layer_with_both_models_side_by_side() -> None:
    with pytest.raises(ValueError, match=r"A's '5' holds .*'bias'.*, B's '9' holds \{'weight': \(84, 120\)\}") as err:
        _check("lenet_gluon:lenet", "lenet_torch:lenet_missing_bias")
    assert "linear(120, 84, bias=False)" in str(err.value) and "mapping=" in str(err.value)


def test_keras_and_flax_batchnorm_defaults_are_found_at_the_first_batchnorm() -> None:
    report = _check("vgg_keras:vgg_batchnorm", "vgg_flax:vgg_batchnorm")
    settings = {(item.setting, item.value_a, item.value_b) for item in report.conventions}
    assert ("eps", 0.001, 1e-05) in settings
    assert ("variance", "two-pass, E[(x − E[x])²]", "E[x²] − E[x]² (use_fast_variance=True)") in settings
    assert not report.agrees
    assert report.first_difference is not None and report.first_difference.startswith(
        "forward (eval mode): A's '0.1' and B's 'norms.0' (batchnorm) get the same input")


def test_a_flatten_of_the_wrong_layout_is_found_between_the_layers() -> None:
    report = _check("vgg_keras:vgg", "vgg_flax:vgg_channels_first_flatten")
    assert not report.agrees and report.round_trip == "exact"
    assert "A's '3' and B's 'fc1' get inputs" in (report.first_difference or "")
    assert "images flattened channels first on one side and channels last" in (report.first_difference or "")


def test_torch_two_lstm_biases_against_flax_one_are_named_where_training_parts() -> None:
    report = _check("lm_torch:lm_two_biases", "lm_flax:lm")
    assert [(item.kind, item.setting, item.value_a, item.value_b) for item in report.conventions] == [
        ("lstm", "bias", "two", "input")]
    assert all(item.agrees for item in report.forward) and report.round_trip == "exact"  # carried as their sum
    assert report.first_difference is not None and report.first_difference.startswith("step 1: rnn.bias_ih")
    assert "move their sum twice as far" in report.first_difference


def test_an_extra_activation_is_found_and_named() -> None:
    report = _check("lm_torch:lm_extra_relu", "lm_flax:lm")
    assert "A's 'decoder' and B's 'decoder' get inputs" in (report.first_difference or "")
    assert "(A applies relu, B applies nothing (identity))" in (report.first_difference or "")


def test_float64_holds_gluon_to_its_named_allowance() -> None:
    report = _check("lenet_gluon:lenet", "lenet_torch:lenet", dtype="float64")
    assert report.dtype == "float64" and report.agrees, str(report)
    assert report.allowances == ["mxnet-float32-hyperparameters"]
    assert max(row.output_difference or 0.0 for item in report.forward for row in item.rows) < 1e-12
