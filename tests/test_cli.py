"""compare.py as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backends import BACKENDS

ROOT = Path(__file__).resolve().parents[1]


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "compare.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_json_summary_has_every_backend() -> None:
    result = compare("--task", "linreg", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["backend"] for row in report["summary"]] == list(BACKENDS)
    for row in report["summary"]:
        assert {"backend", "final_train_loss", "final_val_loss", "max_abs_param_error", "seconds"} <= set(row)
        assert row["max_abs_param_error"] < 5e-3
        assert row["seconds"] > 0
    assert [row["backend"] for row in report["params"][::3]] == [*BACKENDS, "least-squares"]
    assert len(report["params"]) == 3 * (len(BACKENDS) + 1)  # w[0], w[1], b; and the least-squares fit
    assert [row["backend"] for row in report["losses"]] == [*BACKENDS, "least-squares"]
    assert report["settings"]["true_w"] == [2.0, -3.4]


def test_table_format_prints_both_tables() -> None:
    result = compare("--backends", "numpy", "--true-w=1,2,3", "--true-b", "0.5", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "Parameters" in result.stdout and "Losses" in result.stdout
    assert "0.weight[0,2]" in result.stdout
    assert "abs_error" in result.stdout and "final_val_loss" in result.stdout


@pytest.mark.parametrize("fmt,marker", [("markdown", "backend |"), ("csv", "backend,parameter,true")])
def test_other_formats(fmt: str, marker: str) -> None:
    result = compare("--backends", "numpy", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout


@pytest.mark.parametrize("args,message", [
    (["--lr", "0"], "lr must be a finite number > 0; received: 0.0"),
    (["--lr", "nan"], "lr must be a finite number > 0; received: nan"),
    (["--backends", "numpy,jax"], "argument --backends: expected names from numpy, torch, mxnet"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
    (["--true-w", "2,x"], "argument --true-w: expected comma-separated numbers"),
    (["--seed", "-1"], "argument --seed: expected non-negative integers such as 0 or 0,1,2; received: '-1'"),
    (["--noise", "-1"], "noise must be a finite number >= 0; received: -1.0"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = compare("--backends", "numpy", *args) if "--backends" not in args else compare(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def json_report(*args: str) -> dict:
    result = compare(*args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_loss_option_reaches_the_backends() -> None:
    mse = json_report("--backends", "numpy,torch", "--epochs", "1")
    half = json_report("--backends", "numpy,torch", "--epochs", "1", "--loss", "half-mse")
    assert half["options"]["loss"] == "half-mse"
    for a, b in zip(mse["losses"][:2], half["losses"][:2], strict=True):
        assert b["initial_loss"] == pytest.approx(a["initial_loss"] / 2, rel=1e-6)


def test_mlp_reports_function_error_not_parameters() -> None:
    report = json_report("--task", "mlp", "--backends", "numpy", "--epochs", "3", "--hidden", "8,8",
                         "--activation", "relu")
    assert report["params"] == [] and report["settings"]["hidden"] == [8, 8]
    row = report["summary"][0]
    assert row["max_abs_param_error"] is None and row["function_error"] > 0
    assert report["function"][0]["initial_function_error"] > 0


def test_celsius_mlp_and_native_init_say_which_initialiser() -> None:
    report = json_report("--task", "celsius", "--model", "mlp", "--epochs", "5", "--init", "native")
    assert {row["backend"] for row in report["init"]} == set(BACKENDS)
    assert any("kaiming_uniform" in row["initialisation and batches"] for row in report["init"])
    assert any("Uniform(-0.07, 0.07)" in row["initialisation and batches"] for row in report["init"])


def test_own_data_file_with_mlp(tmp_path: Path) -> None:
    data = tmp_path / "xy.csv"
    data.write_text("x1,x2,y\n" + "".join(f"{i},{i % 3},{2 * i - i % 3}\n" for i in range(20)))
    report = json_report("--data", str(data), "--model", "mlp", "--backends", "numpy", "--epochs", "2")
    assert report["task"] == "data" and report["settings"]["features"] == 2 and report["settings"]["rows"] == 20


@pytest.mark.parametrize("args,message", [
    (["--task", "data"], "--task data needs --data FILE"),
    (["--data", "/nonexistent.csv"], "data file '/nonexistent.csv' does not exist"),
    (["--task", "mlp", "--true-w", "1"], "--true-w does not apply to --task mlp"),
    (["--task", "linreg", "--model", "mlp"], "--model does not apply to --task linreg"),
    (["--hidden", "0"], "argument --hidden: expected comma-separated positive integers"),
    (["--optimizer", "adam", "--momentum", "0.5"], "momentum applies to optimizer sgd or momentum, not adam"),
])
def test_task_option_errors(args: list[str], message: str) -> None:
    result = compare("--backends", "numpy", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
