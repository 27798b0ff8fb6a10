"""compare.py sweep: the grid × seeds × backends, each job cached under its key, so the same command
again runs nothing, a widened grid runs only its new points and a run stopped half-way goes on from where
it stopped; a tidy table and a summary with bootstrap intervals and paired verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend_compare import cli as compare
from backend_compare.comparison.sweep import _verdict, bootstrap_interval, split_grid
from tests.conftest import RunCli, load_backend

GRID = ["sweep", "--task", "linreg", "--lr", "0.01,0.03", "--batch-size", "10,100", "--seeds", "2", "--epochs", "1",
        "--backends", "numpy,torch", "--executor", "inline"]


def test_a_sweep_runs_its_grid_once_and_then_from_its_cache(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    out = tmp_path / "sweep"
    first = cli(*GRID, "--out", str(out))
    assert first.code == 0, first.err
    assert first.err.count("job(s) to run") == 4  # every point ran
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert len(jobs) == 2 * 2 * 2 * 2 and set(jobs["backend"]) == {"numpy", "torch"}
    assert (jobs["status"] == "ok").all() and jobs["final_val_loss"].notna().all()
    summary = pd.read_csv(out / "summary.csv")
    assert {"final_val_loss_mean", "final_val_loss_ci_low", "final_val_loss_ci_high"} <= set(summary.columns)
    again = cli(*GRID, "--out", str(out))
    assert again.code == 0 and "job(s) to run" not in again.err and again.out == first.out
    pd.testing.assert_frame_equal(pd.read_parquet(out / "jobs.parquet"), jobs)
    wider = cli(*[("0.01,0.03,0.1" if item == "0.01,0.03" else item) for item in GRID], "--out", str(out))
    assert wider.code == 0 and wider.err.count("job(s) to run") == 2  # only the new lr's two points
    assert "equivalent within" in first.out


def test_a_stopped_sweep_goes_on_from_its_cache(monkeypatch: pytest.MonkeyPatch, cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    out, calls, original = tmp_path / "sweep", [], compare._collect

    def stopped_at_the_third_point(plan):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(plan)

    monkeypatch.setattr(compare, "_collect", stopped_at_the_third_point)
    stopped = cli(*GRID, "--out", str(out))
    assert stopped.code == 130 and "the jobs that finished are cached" in stopped.err
    assert not (out / "jobs.parquet").exists() and len(list((out / "jobs").iterdir())) == 2 * 2 * 2
    monkeypatch.setattr(compare, "_collect", original)
    resumed = cli(*GRID, "--out", str(out))
    assert resumed.code == 0 and resumed.err.count("job(s) to run") == 2


@pytest.mark.parametrize("given,message", [
    ([], "sweep needs --out DIR"),
    (["--lr", "0.01,0.01"], "--lr must list distinct values"),
    (["--init", "native"], "sweep compares backends from the same start"),
])
def test_sweep_usage_errors(cli: RunCli, tmp_path: Path, given: list[str], message: str) -> None:
    out = [] if not given else ["--out", str(tmp_path / "s")]
    ran = cli("sweep", *given, *out)
    assert ran.code == 2 and message in ran.err and ran.err.count("\n") == 1 and ran.out == ""


def test_a_users_folder_is_not_a_sweep_folder(cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep")
    ran = cli("sweep", "--out", str(tmp_path))
    assert ran.code == 2 and "is not a folder of a previous sweep" in ran.err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_the_grid_is_the_product_of_the_lists() -> None:
    rest, grid = split_grid(["--task", "mlp", "--lr", "0.1,0.2", "--optimizer=sgd,adam", "--epochs", "3"])
    assert rest == ["--task", "mlp"] and len(grid) == 4
    assert grid[1] == {"--lr": "0.1", "--optimizer": "adam", "--epochs": "3"}


def test_paired_verdicts_respect_the_noise_and_the_dtype() -> None:
    rng = np.random.default_rng(0)
    low, high = bootstrap_interval(np.array([1.0, 1.1, 0.9, 1.05]), rng)
    assert 0.9 < low < 1.0 < high < 1.1
    assert np.isnan(bootstrap_interval(np.array([1.0]), rng)[0])
    assert _verdict("torch", "numpy", -2e-7, 1e-7, 1e-6) == "equivalent within ±1e-06"
    assert _verdict("torch", "numpy", -0.3, -0.1, 1e-6) == "torch lower"
    assert _verdict("torch", "numpy", 0.1, 0.3, 1e-6) == "numpy lower"
    assert _verdict("torch", "numpy", -0.1, 0.3, 1e-6) == "no conclusion"


def test_each_job_has_its_parity_to_the_reference_backend(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    ran = cli(*GRID, "--dtype", "float64", "--out", str(tmp_path / "s"))
    assert ran.code == 0, ran.err
    jobs = pd.read_csv(tmp_path / "s" / "jobs.csv")
    assert (jobs["reference"] == "numpy").all() and (jobs[jobs["backend"] == "numpy"]["parity_to_reference"] == 0).all()
    assert (jobs["parity_to_reference"] < 1e-12).all() and "params" not in jobs.columns
