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
    assert {row["backend"] for row in report["params"]} == set(BACKENDS)
    assert len(report["params"]) == 3 * len(BACKENDS)  # w[0], w[1], b
    assert len(report["losses"]) == len(BACKENDS)
    assert report["settings"]["true_w"] == [2.0, -3.4]


def test_table_format_prints_both_tables() -> None:
    result = compare("--backends", "numpy", "--true-w=1,2,3", "--true-b", "0.5", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "Parameters" in result.stdout and "Losses" in result.stdout
    assert "0.weight[0,2]" in result.stdout
    assert "abs_error" in result.stdout and "final_val_loss" in result.stdout


@pytest.mark.parametrize("fmt,marker", [("markdown", "| backend"), ("csv", "backend,parameter,true")])
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
    (["--seed", "-1"], "argument --seed: expected a non-negative integer"),
    (["--noise", "-1"], "noise must be a finite number >= 0; received: -1.0"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = compare("--backends", "numpy", *args) if "--backends" not in args else compare(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
