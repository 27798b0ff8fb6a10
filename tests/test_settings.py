"""RunSettings on its own: typed, frozen, checked once with one-line errors, to JSON and back; sweep and explain
derive theirs with dataclasses.replace."""

from __future__ import annotations

import dataclasses

import pytest

from backend_compare.cli.console import UsageError
from backend_compare.cli.settings import RunSettings


def test_settings_round_trip_through_json_and_compare_equal() -> None:
    given = RunSettings(task="mlp", backends=("numpy", "torch:compiled"), seed=(0, 3), hidden=(8, 8), lr=0.05,
                        python=(("np2", "/opt/np2/bin/python"),), activation="relu")
    assert RunSettings.from_json(given.to_json()) == given
    assert hash(RunSettings.from_json(given.to_json())) == hash(given)  # frozen all the way down: tuples


def test_settings_do_not_change_and_derive_with_replace() -> None:
    given = RunSettings(lr=0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        given.lr = 0.2  # type: ignore[misc]
    assert dataclasses.replace(given, lr=0.2).lr == 0.2 and given.lr == 0.1
    with pytest.raises(TypeError):
        RunSettings.from_values({"learning_rate": 0.1})


def test_checked_fills_in_the_task_and_its_loss() -> None:
    assert RunSettings().checked().task == "linreg" and RunSettings().checked().loss == "mse"
    assert RunSettings(task="softmax").checked().loss == "cross-entropy"
    assert RunSettings(data="measurements.csv").checked().task == "data"


@pytest.mark.parametrize("given,message", [
    (RunSettings(seed=(1,), seeds=3), "give --seed or --seeds, not both"),
    (RunSettings(task="data"), "--task data needs --data FILE"),
    (RunSettings(task="softmax", loss="mse"), "--loss mse does not suit --task softmax"),
    (RunSettings(hidden=(4,)), "--hidden applies only to an MLP (--task mlp, or --model mlp) or the recurrent "
                               "layers of --task sequence and tokens, without --layers; this run is --task linreg"),
    (RunSettings(optimizer="adam", momentum=0.5), "--momentum applies only with --optimizer sgd, momentum or nesterov; "
                                                  "this run uses --optimizer adam"),
    (RunSettings(executor="inline", timeout=5.0), "--timeout applies only with --executor process; this run runs "
                                                  "inline"),
])
def test_settings_that_do_not_go_together_are_one_line(given: RunSettings, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        given.checked()
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_row_names_expand_each_mode_once() -> None:
    settings = RunSettings(mode=("eager", "compiled"))
    assert settings.row_names(["numpy", "torch:eager"]) == ["numpy:eager", "numpy:compiled", "torch:eager"]
    assert RunSettings().row_names(["numpy", "numpy@np2"]) == ["numpy", "numpy@np2"]


def test_task_keywords_are_the_given_ones_as_lists() -> None:
    settings = RunSettings(task="linreg", true_w=(1.0, 2.0), noise=0.5)
    assert settings.task_kwargs() == {"true_w": [1.0, 2.0], "noise": 0.5}
    assert RunSettings(seeds=3).seed_list == [0, 1, 2] and RunSettings(seed=(5, 7)).seed_list == [5, 7]
