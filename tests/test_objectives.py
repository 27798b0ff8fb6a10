"""Like with like: the objective each row minimises beside its loss, the reference solved on the data the
backends train on, and every row's learned parameters saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from backend_compare.backends.spec import Activation, Linear, make_spec
from backend_compare.comparison import reference
from backend_compare.comparison.run import reference_result, train
from backend_compare.layers import BatchNorm
from backend_compare.tasks import get_task
from tests.conftest import RunCli

DECAY = 0.05


def test_weight_decay_is_the_gradient_of_the_penalty_each_framework_computes(backend) -> None:
    """One SGD step moves every parameter, biases and BatchNorm's γ and β included, by −lr·(∇loss + wd·p), and
    weight_penalty is ½·wd·Σ‖p‖²: the step descends loss + weight_penalty, the objective the reference minimises."""
    norm = BatchNorm(4)
    if backend.cannot_build(norm):  # torch keeps the other running variance: in training it is not used
        norm = BatchNorm(4, unbiased_running_var=True)
    spec = make_spec([Linear(3, 4), norm, Activation("tanh"), Linear(4, 2)])
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    model = backend(spec, dtype="float64", lr=0.1, weight_decay=DECAY)
    model.set_params({name: rng.normal(size=value.shape) for name, value in model.get_params().items()})
    model.load(X, y)
    params = model.get_params()
    _, grads = model.loss_and_grads(X, y)
    change, _ = model.update_for(np.arange(8))
    rtol = 1e-6 if backend.name == "mxnet" else 1e-12  # MXNet keeps lr and wd in float32 (backends/tolerances.py)
    for name, value in params.items():
        np.testing.assert_allclose(change[name], -0.1 * (grads[name] + DECAY * value), rtol=rtol, atol=1e-14)
    squares = sum(float(np.sum(value**2)) for value in params.values())
    assert model.weight_penalty() == pytest.approx(0.5 * DECAY * squares, rel=1e-13)


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """softmax on iris with weight decay, two seeds, saved: one run for many assertions."""
    from backend_compare import cli as compare

    out = tmp_path_factory.mktemp("objective") / "run"
    code = compare.main(["--executor", "inline", "--task", "softmax", "--dataset", "iris", "--epochs", "40",
                         "--weight-decay", "0.01", "--seeds", "2", "--backends", "numpy,torch,jax", "--dtype",
                         "float64", "--out", str(out), "--format", "json"], prog="compare.py")
    assert code == 0
    return {"out": out, "report": json.loads((out / "results.json").read_text())}


def test_the_objective_is_beside_the_loss_and_no_backend_ends_below_the_optimum(softmax_run: dict[str, Any]) -> None:
    report = softmax_run["report"]
    optimum = report["reference"]
    rows = {row["backend"]: row for row in report["by_seed"]["losses"] if row["seed"] == 0}
    best = rows.pop(optimum)
    for row in rows.values():  # every backend's objective, within rounding, at or above the optimum's
        assert row["final_train_objective"] > row["final_train_loss"]
        assert row["final_train_objective"] >= best["final_train_objective"] - 1e-12
    assert "final_train_objective" in report["summary"][0]
    # the penalty the column adds is ½·wd·‖θ‖² of the row's own parameters
    params = pd.DataFrame(report["by_seed"]["params"])
    for name, row in [*rows.items(), (optimum, best)]:
        learned = params[(params["seed"] == 0) & (params["backend"] == name)]["learned"].to_numpy()
        assert row["final_train_objective"] - row["final_train_loss"] == pytest.approx(
            0.5 * 0.01 * float(learned @ learned), rel=1e-9)
    assert "final_train_objective" in pd.read_csv(softmax_run["out"] / "losses.csv").columns


def test_the_text_table_explains_the_objective_column(cli: RunCli, softmax_run: dict[str, Any]) -> None:
    shown = cli("show", str(softmax_run["out"]))
    assert "final_train_objective = final_train_loss + ½·weight_decay·Σ‖p‖²" in shown.out


def test_report_html_explains_the_objective_column(softmax_run: dict[str, Any]) -> None:
    page = (softmax_run["out"] / "report.html").read_text()
    assert "final_train_objective = final_train_loss + ½·weight_decay·Σ‖p‖²" in page


def test_a_backend_without_the_penalty_hook_says_whose_penalty_it_is() -> None:
    from backend_compare.backends.numpy_backend import NumpyBackend

    class Hookless(NumpyBackend):
        name = "hookless"
        _penalty = None  # a third-party backend that has not written the hook

    problem = get_task("linreg").make_problem(seed=0, epochs=1, batch_size=100, n_samples=200, dtype="float64")
    result = train(Hookless(problem.spec, dtype="float64", weight_decay=DECAY), problem)
    squares = sum(float(np.sum(value**2)) for value in result.params.values())
    assert result.final_train_objective == pytest.approx(result.final_train_loss + 0.5 * DECAY * squares, rel=1e-13)
    assert "no _penalty hook" in result.note and "NumPy" in result.note


def test_every_rows_parameters_are_saved_and_shown_on_request(cli: RunCli, softmax_run: dict[str, Any]) -> None:
    report = softmax_run["report"]
    assert report["on_request"] == ["params"]
    rows = pd.DataFrame(report["params"])
    assert set(rows["backend"]) == {"numpy", "torch", "jax", report["reference"]}
    assert (rows.groupby("backend").size() == 3 * 4 + 3).all()  # iris: 3 classes × 4 features, 3 biases
    assert "Parameters" not in cli("show", str(softmax_run["out"])).out
    shown = cli("show", str(softmax_run["out"]), "--params")
    assert shown.code == 0 and "Parameters" in shown.out and "0.weight[2,3]" in shown.out
    assert "Losses" not in shown.out
    as_csv = pd.read_csv(softmax_run["out"] / "params.csv")
    assert len(as_csv) == len(rows)
    assert json.loads(cli("show", str(softmax_run["out"]), "--params", "--format", "json").out) == report["params"]


def test_the_float32_reference_is_solved_on_the_rows_as_rounded(tmp_path: Path) -> None:
    """A data file read in float64, trained in float32: the reference solves the float32 values."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2)) * 1.1
    y = X @ [1.3, -0.7] + 0.1 * rng.normal(size=40)
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}).to_csv(path, index=False, float_format="%.17g")
    problem = get_task("data").make_problem(data=path, seed=0, epochs=1, batch_size=8, dtype="float32")
    assert problem.X_train.dtype == np.float64  # a data file is read in float64: the backends round it
    options = {"dtype": "float32", "loss": "mse", "huber_delta": 1.0, "weight_decay": 0.0}
    row = reference_result(problem, options)
    assert row is not None

    def solved(rounded: bool) -> np.ndarray:
        X_train, y_train = (problem.X_train.astype(np.float32), problem.y_train.astype(np.float32)) if rounded \
            else (problem.X_train, problem.y_train)
        return reference.solve(X_train, y_train, bias=True, loss="mse", huber_delta=1.0,
                               weight_decay=0.0).params["0.weight"]

    assert not np.array_equal(solved(True), solved(False))  # the rounding moves the optimum
    np.testing.assert_array_equal(row.params["0.weight"], solved(True))
    rounded = problem.X_train.astype(np.float32)
    assert row.final_train_loss == reference.mean_loss(rounded, problem.y_train.astype(np.float32), row.params,
                                                       "mse", 1.0)


def test_a_model_too_large_to_tabulate_says_so_on_request(cli: RunCli, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from backend_compare.comparison import fits

    monkeypatch.setattr(fits, "MAX_TABULATED", 20)  # the 13-unit MLP has 40 values
    out = tmp_path / "run"
    assert cli("--task", "mlp", "--epochs", "1", "--backends", "numpy", "--out", str(out)).code == 0
    assert json.loads((out / "results.json").read_text())["params"] == []
    shown = cli("show", str(out), "--params")
    assert shown.code == 0 and "This run saved no parameters." in shown.out


def test_diff_gates_the_objective(softmax_run: dict[str, Any]) -> None:
    from backend_compare.comparison.saved import diff_runs

    report = softmax_run["report"]
    worse = json.loads(json.dumps(report))
    for row in worse["summary"]:
        row["final_train_objective"] *= 2
    verdicts = diff_runs(report, worse, threshold=0.1, atol=0.0)
    assert set(verdicts[verdicts["metric"] == "final_train_objective"]["verdict"]) == {"WORSE"}
