"""The options the tutorials' own experiments need: --val-fraction 0, --val-rows, --no-shuffle, --no-bias,
--init-from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend_compare.tasks import get_task

from .conftest import RunCli


def report(cli: RunCli, *args: str) -> dict[str, Any]:
    ran = cli(*args, "--format", "json", "--quiet")
    assert ran.code == 0, ran.err
    found: dict[str, Any] = json.loads(ran.out)
    return found


def trained(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each backend's summary row (not the reference's), all of them finished."""
    rows = [row for row in found["summary"] if row["backend"] != found["reference"]]
    assert rows and all(row["status"] == "ok" for row in rows), rows
    return rows


def learned(found: dict[str, Any], backend: str) -> dict[str, float]:
    return {row["parameter"]: row["learned"] for row in found["params"] if row["backend"] == backend}


def test_the_options_shape_the_problem() -> None:
    """--no-shuffle: the same batches, in row order, every epoch; --val-rows: exactly those rows held out, the
    others training in their order; --val-fraction 0: every row trains, classification included."""
    linreg = get_task("linreg").make_problem(n_samples=50, epochs=3, batch_size=20, shuffle=False, val_fraction=0)
    assert [[batch.tolist() for batch in epoch] for epoch in linreg.epoch_batches] == \
        [[list(range(20)), list(range(20, 40)), list(range(40, 50))]] * 3
    assert get_task("linreg").make_problem(n_samples=50, batch_size=20).settings.get("shuffle") is None
    celsius = get_task("celsius").make_problem(val_rows=[6, 10])
    assert celsius.X_val[:, 0].tolist() == pytest.approx([3.39, 6.84])
    assert celsius.y_val[:, 0].tolist() == [3.0, 21.0] and len(celsius.X_train) == 9
    assert celsius.y_train[:, 0].tolist() == [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, -4.0, 6.0, 13.0]
    iris = get_task("softmax").make_problem(dataset="iris", val_fraction=0, bias=False)
    assert (len(iris.X_train), len(iris.X_val)) == (150, 0) and list(iris.initial_params) == ["0.weight"]


def test_classification_without_validation(cli: RunCli) -> None:
    """Every table that shows validation copes with none: dashes, nulls in JSON, no crash."""
    ran = cli("--task", "softmax", "--dataset", "iris", "--val-fraction", "0", "--backends", "numpy",
              "--epochs", "2", "--quiet")
    assert ran.code == 0, ran.err
    assert "Validation accuracy per class" in ran.out
    found = report(cli, "--task", "softmax", "--dataset", "iris", "--val-fraction", "0", "--backends", "numpy",
                   "--epochs", "2")
    assert all(row["final_val_loss"] is None for row in found["summary"])


@pytest.mark.parametrize(("args", "says"), [
    (("--val-fraction", "1"), "argument --val-fraction: expected a fraction from 0 (no validation rows) up to but "
                              "not including 1; received: '1'"),
    (("--val-fraction", "nan"), "argument --val-fraction: expected a fraction"),
    (("--task", "celsius", "--val-rows", "6,11"), "val_rows must be positions of the data's 11 rows, 0 to 10; "
                                                  "received: [6, 11]"),
    (("--task", "celsius", "--val-rows", "6,6"), "val_rows must name each row once"),
    (("--init-from", "START.json"), "init_from 'START.json' lacks 0.bias; the model's parameters are "
                                    "0.weight (1, 2), 0.bias (1,)"),
    (("--init-from", "EXTRA.json", "--true-w", "1"), "EXTRA.json': 0.weight has shape (1, 2); the model's "
                                                     "0.weight has shape (1, 1)"),
    (("--init-from", "EXTRA.json", "--no-bias"), "has 0.bias, which the model has not"),
    (("--init-from", "NAN.json", "--no-bias"), "0.weight holds a value that is not finite (nan at [0, 1])"),
    (("--init-from", "BAD.json"), "is not JSON: Expecting value at line 1, column 1"),
    (("--init-from", "MISSING.npz"), "cannot be read as an .npz"),
    (("--init-from", "START.txt"), "init_from must be an .npz or a .json file; received: 'START.txt'"),
])
def test_bad_tutorial_options_are_one_line_usage_errors(cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        args: tuple[str, ...], says: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "START.json").write_text(json.dumps({"0.weight": [[0.5, 0.5]]}))
    (tmp_path / "EXTRA.json").write_text(json.dumps({"0.weight": [[0.5, 0.5]], "0.bias": [0.0]}))
    (tmp_path / "NAN.json").write_text('{"0.weight": [[0.5, NaN]]}')
    (tmp_path / "BAD.json").write_text("")
    ran = cli(*args, "--backends", "numpy", "--out", "never")
    assert ran.code == 2 and says in ran.err and len(ran.err.strip().splitlines()) == 1, ran.err
    assert not (tmp_path / "never").exists()


def test_init_from_npz_starts_every_backend_there(cli: RunCli, tmp_path: Path) -> None:
    """An .npz of canonical names is the start of every row: each backend's own loss before training is the
    loss at that start (and not at the start the seed draws)."""
    start = {"0.weight": np.array([[0.25, -0.5]]), "0.bias": np.array([1.5])}
    np.savez(tmp_path / "start.npz", **start)
    found = report(cli, "--init-from", str(tmp_path / "start.npz"), "--n-samples", "100", "--epochs", "1")
    problem = get_task("linreg").make_problem(n_samples=100, epochs=1, batch_size=10)
    at = {"file": start, "drawn": problem.initial_params}
    expected = {name: float(np.mean((problem.X_train @ p["0.weight"].T + p["0.bias"] - problem.y_train) ** 2))
                for name, p in at.items()}
    assert expected["file"] == pytest.approx(16.37, rel=1e-3) and expected["drawn"] == pytest.approx(29.22, rel=1e-3)
    for row in found["losses"]:
        if row["backend"] != found["reference"]:
            assert row["initial_loss"] == pytest.approx(expected["file"], rel=1e-5), row
