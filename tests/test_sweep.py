"""compare.py sweep: the grid × seeds × backends, each job cached under its key, so the same command
again runs nothing, a widened grid runs only its new points and a run stopped half-way goes on from where
it stopped; a tidy table and a summary with bootstrap intervals and paired verdicts."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend_compare.comparison import executors
from backend_compare.comparison.cache import CACHE, entry_count
from backend_compare.comparison.sweep import _verdict, bootstrap_interval, paired, split_grid, summarise
from tests.conftest import RunCli, load_backend

GRID = ["sweep", "--task", "linreg", "--lr", "0.01,0.03", "--batch-size", "10,100", "--seeds", "2", "--epochs", "1",
        "--backends", "numpy,torch", "--executor", "inline"]


def test_a_sweep_runs_its_grid_once_and_then_from_its_cache(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    out = tmp_path / "sweep"
    first = cli(*GRID, "--out", str(out))
    assert first.code == 0, first.err
    assert "16 jobs, 0 cached, 16 to run on inline" in first.err
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert len(jobs) == 2 * 2 * 2 * 2 and set(jobs["backend"]) == {"numpy", "torch"}
    assert (jobs["status"] == "ok").all() and jobs["final_val_loss"].notna().all()
    summary = pd.read_csv(out / "summary.csv")
    assert {"final_val_loss_mean", "final_val_loss_ci_low", "final_val_loss_ci_high"} <= set(summary.columns)
    again = cli(*GRID, "--out", str(out))
    assert again.code == 0 and "to run" not in again.err and again.out == first.out
    pd.testing.assert_frame_equal(pd.read_parquet(out / "jobs.parquet"), jobs)
    wider = cli(*[("0.01,0.03,0.1" if item == "0.01,0.03" else item) for item in GRID], "--out", str(out))
    assert wider.code == 0 and "24 jobs, 16 cached, 8 to run" in wider.err  # only the new lr's two points
    assert "equivalent within" in first.out


def test_a_stopped_sweep_goes_on_from_its_cache(monkeypatch: pytest.MonkeyPatch, cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    out, calls, original = tmp_path / "sweep", [], executors.run_job_here

    def stopped_at_the_ninth_job(job, on_progress):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return original(job, on_progress)

    monkeypatch.setattr(executors, "run_job_here", stopped_at_the_ninth_job)
    stopped = cli(*GRID, "--out", str(out))
    assert stopped.code == 130 and "the jobs that finished are cached" in stopped.err
    assert not (out / "jobs.parquet").exists() and entry_count(out) == 8
    monkeypatch.setattr(executors, "run_job_here", original)
    resumed = cli(*GRID, "--out", str(out))
    assert resumed.code == 0 and "16 jobs, 8 cached, 8 to run" in resumed.err


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


@pytest.mark.parametrize("users", [{"sweep.json": "{}", "summary.csv": "mine"},  # the user's files of those names
                                   {"thesis.tex": "chapter 1"},  # a file of the user's put into a real sweep
                                   {"parity.png": "not a figure of ours"}])
def test_a_sweep_never_writes_into_a_folder_it_cannot_prove_it_wrote(cli: RunCli, tmp_path: Path,
                                                                     users: dict[str, str]) -> None:
    out = tmp_path / "mine"
    if "sweep.json" not in users:  # a real sweep first, then the user's file put into it
        assert cli(*SMALL, "--out", str(out)).code == 0
    out.mkdir(exist_ok=True)
    for name, text in users.items():
        (out / name).write_text(text)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    ran = cli(*SMALL, "--out", str(out))
    assert ran.code == 2 and "is not a folder of a previous sweep" in ran.err, ran.err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_the_grid_is_the_product_of_the_lists() -> None:
    rest, grid = split_grid(["--task", "mlp", "--lr", "0.1,0.2", "--optimizer=sgd,adam", "--epochs", "3"])
    assert rest == ["--task", "mlp"] and len(grid) == 4
    assert grid[1] == {"--lr": "0.1", "--optimizer": "adam", "--epochs": "3"}


def test_a_tasks_declared_sweepable_options_are_grid_axes(cli: RunCli, tmp_path: Path) -> None:
    rest, grid = split_grid(["--task", "linreg", "--noise", "0.01,0.1", "--n-samples=100,1000", "--true-w=1,2"])
    assert rest == ["--task", "linreg", "--true-w=1,2"] and len(grid) == 4  # a list-valued option is one value
    ran = cli("sweep", "--task", "linreg", "--noise", "0.01,1", "--backends", "numpy", "--epochs", "1",
              "--executor", "inline", "--quiet", "--out", str(tmp_path / "s"))
    assert ran.code == 0, ran.err
    jobs = pd.read_csv(tmp_path / "s" / "jobs.csv")
    losses = jobs.set_index("noise")["final_val_loss"]
    assert sorted(losses.index) == [0.01, 1.0] and losses[1.0] > 100 * losses[0.01]  # the noise is the data's
    assert (tmp_path / "s" / "loss_vs_noise.png").exists()
    refused = cli("sweep", "--task", "celsius", "--noise", "0.01,1", "--out", str(tmp_path / "t"))
    assert refused.code == 2 and "--noise applies only to --task linreg or mlp" in refused.err


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


def test_show_reprints_a_sweep_and_diff_flags_only_changes_outside_the_noise(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    a, b = tmp_path / "a", tmp_path / "b"
    ran = cli(*GRID, "--out", str(a))
    assert ran.code == 0, ran.err
    shown = cli("show", str(a))
    assert shown.code == 0 and shown.out == ran.out.split("\n\n", 1)[1]  # the summary, without the files line
    assert cli(*GRID, "--out", str(b)).code == 0
    same = cli("diff", str(a), str(b))
    assert same.code == 0 and "WORSE" not in same.out
    verdicts = same.out.splitlines()
    assert all(" equal" in line for line in verdicts if "final_val_loss" in line)  # the same code, bit for bit
    jobs = pd.read_parquet(b / "jobs.parquet")
    worse = jobs.copy()
    worse.loc[worse["backend"] == "torch", "final_val_loss"] *= 1.5  # torch got worse on every seed
    worse.to_parquet(b / "jobs.parquet")
    flagged = cli("diff", str(a), str(b))
    assert flagged.code == 1 and "regression(s) outside the noise: torch final_val_loss" in flagged.err
    noisy = jobs.copy()  # one seed up, one seed down by as much: the interval holds zero
    torch = noisy["backend"] == "torch"
    noisy.loc[torch, "final_val_loss"] *= np.where(noisy.loc[torch, "seed"] == 0, 1.5, 0.5)
    noisy.to_parquet(b / "jobs.parquet")
    within = cli("diff", str(a), str(b))
    assert within.code == 0 and "within noise" in within.out
    failed = jobs.copy()
    failed.loc[0, "status"] = "crashed (signal 9)"
    failed.to_parquet(b / "jobs.parquet")
    lost = cli("diff", str(a), str(b))
    assert lost.code == 1 and "status: crashed (signal 9)" in lost.out
    mixed = cli("diff", str(a), str(tmp_path / "nothing"))
    assert mixed.code == 2


def test_a_sweep_and_a_run_are_not_compared(cli: RunCli, tmp_path: Path) -> None:
    assert cli(*GRID, "--backends", "numpy", "--out", str(tmp_path / "sweep")).code == 0
    assert cli("--backends", "numpy", "--executor", "inline", "--out", str(tmp_path / "run")).code == 0
    ran = cli("diff", str(tmp_path / "sweep"), str(tmp_path / "run"))
    assert ran.code == 2 and "is a sweep and the other is a run" in ran.err


def test_the_figures_show_each_backend_with_its_interval(tmp_path: Path) -> None:
    from backend_compare.comparison import sweep_plots

    rows = []
    for lr in (0.01, 0.03):
        for batch in (10, 100):
            for backend, scale in (("numpy", 1.0), ("torch", 1.0), ("mxnet", 2.0)):
                for seed in range(3):
                    rows.append({"task": "linreg", "lr": lr, "batch_size": batch, "backend": backend, "seed": seed,
                                 "status": "ok", "final_train_loss": scale * lr,
                                 "final_val_loss": scale * lr * (1 + seed),
                                 "max_abs_param_error": 0.1, "function_error": np.nan,
                                 "parity_to_reference": 0.0 if backend == "numpy" else 1e-7 * scale,
                                 "parity_tolerance": 1e-5,
                                 "us_per_step": 10 * scale + seed, "compile_seconds": 0.01})
    jobs = pd.DataFrame(rows)
    settings = ["task", "lr", "batch_size"]
    summary = summarise(jobs, settings)
    name, loss = sweep_plots.loss_figure(summary, settings, "t")
    assert name == "loss_vs_lr.png" and len(loss.axes) == 2  # a panel per batch size, lr along x
    for axes in loss.axes:
        assert [line.get_label() for line in axes.lines] == ["numpy", "torch", "mxnet"]
        assert len(axes.collections) == 3  # each backend's 95 % band
        assert axes.get_xscale() == "log"
    parity = sweep_plots.parity_figure(jobs, settings, "numpy", "a title as long as a grid's " * 3, "float32")
    image = parity.axes[0].images[0]
    # in multiples of the tolerance, 1x in the colour scale's middle: mxnet's 2e-7 is 0.02x, torch's 1e-7 0.01x
    assert image.get_array().shape == (4, 2) and np.allclose(image.get_array()[:, 1], np.log10(0.02))
    assert image.norm(0.0) == 0.5 and "0.02×" in [text.get_text() for text in parity.axes[0].texts]
    assert "1× (the tolerance)" in [label.get_text() for label in parity.axes[1].get_yticklabels()]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(parity).get_renderer()
    parity.draw(renderer)
    title = parity.axes[0].title.get_window_extent(renderer)
    assert parity.bbox.x0 <= title.x0 and title.x1 <= parity.bbox.x1 and title.y1 <= parity.bbox.y1  # none cut off
    bars = sweep_plots.time_figure(summary, settings, "t").axes[0]
    errors = [c for c in bars.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars.patches) == 3 * 4 and len(errors) == 3 and "95 % interval" in bars.get_title()
    curves = sweep_plots.curves_figure({"numpy": {"step": [1, 2], "loss": [2.0, 1.0], "seconds": [0.0, 0.1]}}, "x")
    assert [axes.get_xlabel() for axes in curves.axes] == ["optimiser step", "seconds of training (compiling "
                                                                            "included)"]


def test_time_is_compared_as_a_paired_ratio_with_its_interval() -> None:
    jobs = pd.DataFrame([{"task": "t", "backend": backend, "seed": seed, "status": "ok", "final_val_loss": 1.0,
                          "us_per_step": base * (1 + 0.01 * seed)}
                         for seed in range(5) for backend, base in (("numpy", 10.0), ("torch", 30.0), ("jax", 10.2))])
    table = paired(jobs, ["task"], "numpy", "float32").set_index(["backend", "metric"])
    assert table.loc[("torch", "us_per_step"), "value"] == pytest.approx(3.0)
    assert table.loc[("torch", "us_per_step"), "verdict"] == "numpy faster"
    assert table.loc[("jax", "us_per_step"), "verdict"] == "equivalent within ±5%"
    assert table.loc[("torch", "final_val_loss"), "verdict"].startswith("equivalent within")


def test_a_sweep_stopped_while_saving_says_what_is_cached(monkeypatch: pytest.MonkeyPatch, cli: RunCli,
                                                          tmp_path: Path) -> None:
    from backend_compare.cli import sweep as sweep_command

    def stopped(*_: object) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_command, "_figures", stopped)
    out = tmp_path / "sweep"
    ran = cli(*GRID, "--backends", "numpy", "--out", str(out))
    assert ran.code == 130 and ran.err.endswith(f"interrupted; the jobs that finished are cached in {out / CACHE}: "
                                                "the same command goes on from there\n"), ran.err
    assert entry_count(out) == 8 and not list(out.glob(".*.tmp"))


def test_a_jobs_key_is_what_decides_its_numbers_not_how_it_is_spelt(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    first = cli("sweep", "--backends", "numpy", "--lr", "0.01,0.03", "--epochs", "1", "--true-b", "2", "--noise",
                "0.5", "--executor", "inline", "--out", str(out))
    assert first.code == 0 and "2 jobs, 0 cached, 2 to run" in first.err, first.err
    reordered = cli("sweep", "--backends", "numpy", "--noise", "0.50", "--epochs", "1", "--lr", "0.01,0.03",
                    "--true-b", "2.0", "--executor", "inline", "--out", str(out))
    assert reordered.code == 0 and "to run" not in reordered.err  # the same options: all cached
    swapped = cli("sweep", "--backends", "numpy", "--lr", "0.01,0.03", "--epochs", "1", "--true-b", "0.5", "--noise",
                  "2", "--executor", "inline", "--out", str(out))
    assert swapped.code == 0 and "2 jobs, 0 cached, 2 to run" in swapped.err  # other numbers: not the cache's


def test_an_edited_data_file_runs_its_jobs_again(cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    grid = ["sweep", "--data", str(data), "--backends", "numpy", "--lr", "0.001,0.002", "--epochs", "1",
            "--executor", "inline", "--out", str(tmp_path / "sweep")]
    assert "2 to run" in cli(*grid).err
    assert "to run" not in cli(*grid).err
    data.write_text("x,y\n" + "".join(f"{i},{3 * i + 1}\n" for i in range(20)))  # same name, other numbers
    assert "2 jobs, 0 cached, 2 to run" in cli(*grid).err


def test_a_classification_sweep_summarises_accuracy_and_refuses_a_regression_loss(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    grid = ["sweep", "--task", "softmax", "--dataset", "iris", "--lr", "0.1,0.3", "--seeds", "2", "--epochs", "5",
            "--backends", "numpy,torch", "--executor", "inline", "--dtype", "float64"]
    ran = cli(*grid, "--out", str(tmp_path / "s"))
    assert ran.code == 0, ran.err
    jobs = pd.read_csv(tmp_path / "s" / "jobs.csv")
    assert len(jobs) == 8 and jobs["val_accuracy"].between(0.3, 1).all() and (jobs["parity_to_reference"] < 1e-12).all()
    summary = pd.read_csv(tmp_path / "s" / "summary.csv")
    assert {"val_accuracy_mean", "val_accuracy_ci_low", "val_accuracy_ci_high"} <= set(summary.columns)
    refused = cli(*grid, "--loss", "mse,cross-entropy", "--out", str(tmp_path / "t"))
    assert refused.code == 2 and "--loss mse does not suit --task softmax" in refused.err
    assert not (tmp_path / "t").exists()


SMALL = ["sweep", "--task", "linreg", "--lr", "0.01,0.03", "--epochs", "1", "--backends", "numpy",
         "--executor", "inline"]


def rows_of(out: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(out / CACHE)) as db:
        return dict(db.execute("SELECT key, row FROM jobs ORDER BY key"))


def put_row(out: Path, key: str, text: str) -> None:
    with contextlib.closing(sqlite3.connect(out / CACHE)) as db, db:
        db.execute("UPDATE jobs SET row = ? WHERE key = ?", (text, key))


@pytest.mark.parametrize("damage", ["[]", "null", "{}", "half", "no status", "another job's"])
def test_a_damaged_or_foreign_cache_entry_is_run_again_not_reported(cli: RunCli, tmp_path: Path,
                                                                     damage: str) -> None:
    out = tmp_path / "sweep"
    first = cli(*SMALL, "--out", str(out))
    assert first.code == 0, first.err
    timing = ["us_per_step", "compile_seconds"]
    before = pd.read_parquet(out / "jobs.parquet").drop(columns=timing)
    (victim, text), (_, other) = rows_of(out).items()
    damaged = {"half": text[: len(text) // 2], "another job's": other,  # a whole, valid row: of the other job
               "no status": json.dumps({k: v for k, v in json.loads(text).items() if k != "status"})}
    put_row(out, victim, damaged.get(damage, damage))
    again = cli(*SMALL, "--out", str(out))
    assert again.code == 0 and "Traceback" not in again.err, again.err
    assert "2 jobs, 1 cached, 1 to run" in again.err
    assert f"1 cache entry is not a result of its job and runs again: {victim}: " in again.err
    # the job run again gives its own numbers, not the other job's
    pd.testing.assert_frame_equal(pd.read_parquet(out / "jobs.parquet").drop(columns=timing), before)
    assert json.loads(rows_of(out)[victim])["key"] == victim


@pytest.mark.parametrize("damage", ["not a database", "cut in half", "empty"])
def test_a_damaged_cache_file_is_said_and_its_jobs_run_again(cli: RunCli, tmp_path: Path, damage: str) -> None:
    out = tmp_path / "sweep"
    assert cli(*SMALL, "--out", str(out)).code == 0
    before = pd.read_parquet(out / "jobs.parquet").drop(columns=["us_per_step", "compile_seconds"])
    whole = (out / CACHE).read_bytes()
    (out / CACHE).write_bytes({"not a database": b"these are not the rows you are looking for" * 100,
                               "cut in half": whole[: len(whole) // 2], "empty": b""}[damage])
    again = cli(*SMALL, "--out", str(out))
    assert again.code == 0 and "Traceback" not in again.err, again.err
    assert "2 jobs, 0 cached, 2 to run" in again.err
    assert "2 cache entries are not a result of their job and run again: " in again.err, again.err
    assert "jobs.sqlite is not a readable cache" in again.err
    pd.testing.assert_frame_equal(pd.read_parquet(out / "jobs.parquet").drop(columns=["us_per_step",
                                                                                      "compile_seconds"]), before)
    assert len(rows_of(out)) == 2 and "to run" not in cli(*SMALL, "--out", str(out)).err  # a whole cache again


def test_a_fifo_where_the_cache_is_refuses_the_folder_without_waiting(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert cli(*SMALL, "--out", str(out)).code == 0
    (out / CACHE).unlink()
    os.mkfifo(out / CACHE)
    again = cli(*SMALL, "--out", str(out))  # returning at all is the point: opening a FIFO waits for a writer
    assert again.code == 2 and again.err.count("\n") == 1 and "Traceback" not in again.err, again.err


def test_a_cache_of_one_file_per_job_from_before_is_read(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    first = cli(*SMALL, "--out", str(out))
    assert first.code == 0, first.err
    (out / "jobs").mkdir()
    for key, text in rows_of(out).items():  # as sweeps wrote their cache before it was one SQLite file
        (out / "jobs" / f"{key}.json").write_text(text)
    (out / CACHE).unlink()
    again = cli(*SMALL, "--out", str(out))
    assert again.code == 0 and "to run" not in again.err and again.out == first.out, again.err


def test_a_one_point_sweep_draws_its_figures(cli: RunCli, tmp_path: Path) -> None:
    """A normal first try: one backend, one point, one seed. Its figures are drawn, with no warning."""
    out = tmp_path / "sweep"
    ran = cli("sweep", "--task", "linreg", "--epochs", "1", "--backends", "numpy", "--executor", "inline",
              "--out", str(out))
    assert ran.code == 0 and "warning" not in ran.err and "could not be drawn" not in ran.err, ran.err
    assert {"loss_vs_point.png", "step_time.png", "curves.png"} <= {p.name for p in out.iterdir()}


def test_a_full_disk_while_caching_is_one_line(monkeypatch: pytest.MonkeyPatch, cli: RunCli, tmp_path: Path) -> None:
    from backend_compare.comparison import cache

    class Full(sqlite3.Connection):
        def executemany(self, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            raise sqlite3.OperationalError("database or disk is full")

    connect = sqlite3.connect  # the module is the test's too: keep the real one
    monkeypatch.setattr(cache.sqlite3, "connect", lambda *a, **k: connect(*a, **k, factory=Full))
    ran = cli(*SMALL, "--out", str(tmp_path / "sweep"))
    assert ran.code == 1 and "Traceback" not in ran.err, ran.err
    *said, error = ran.err.splitlines()  # what it was doing, then one line
    assert said == ["compare.py sweep: 2 jobs, 0 cached, 2 to run on inline"], ran.err
    assert error.startswith("compare.py sweep: error: the sweep could not be saved: database or disk is full"), error
    assert not (tmp_path / "sweep" / "jobs.parquet").exists()


def test_parity_to_the_reference_carries_the_pairs_tolerance() -> None:
    from backend_compare.comparison.sweep import parity_ratio, with_parity

    rows = [{"task": "linreg", "backend": backend, "seed": 0, "status": "ok", "params": {"w": [2.0, value]}}
            for backend, value in (("numpy", -4.0), ("torch", -4.0 + 2e-7))]
    jobs = pd.DataFrame(with_parity(rows, ["task"], "numpy", "float32", "sgd"))
    assert jobs["parity_tolerance"].tolist() == pytest.approx([1e-6 + 1e-4 * 4.0] * 2)  # atol + rtol · largest
    assert parity_ratio(jobs, "float32").tolist() == pytest.approx([0.0, 2e-7 / 4.01e-4], rel=1e-3)


def test_points_that_never_converged_are_not_called_equivalent(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    ran = cli("sweep", "--task", "linreg", "--lr", "0.0003,0.03", "--epochs", "1", "--seeds", "2", "--backends",
              "numpy,torch", "--executor", "inline", "--out", str(tmp_path / "s"))
    assert ran.code == 0, ran.err
    jobs = pd.read_csv(tmp_path / "s" / "jobs.csv")
    stopped_short = jobs[jobs["lr"] == 0.0003]  # validation loss ~30 against the optimum's 1e-4: agreeing, unfinished
    assert not stopped_short["converged"].any() and stopped_short["note"].str.startswith("not converged").all()
    assert jobs[jobs["lr"] == 0.03]["converged"].all()
    verdicts = pd.read_csv(tmp_path / "s" / "paired.csv").query("metric == 'final_val_loss'").set_index("lr")
    assert verdicts.loc[0.0003, "verdict"] == "not converged (torch, numpy)"
    assert verdicts.loc[0.03, "verdict"].startswith("equivalent within")
    summary = pd.read_csv(tmp_path / "s" / "summary.csv")
    assert summary["converged_seeds"].tolist() == [0, 0, 2, 2] and " 0/2 " in ran.out and " 2/2 " in ran.out
    # an MLP has no exact optimum: it is held to the lowest loss the sweep reached on the same data
    mlp = cli("sweep", "--task", "mlp", "--lr", "0.0001,0.03", "--epochs", "2", "--backends", "numpy",
              "--executor", "inline", "--out", str(tmp_path / "mlp"))
    assert mlp.code == 0, mlp.err
    rows = pd.read_csv(tmp_path / "mlp" / "jobs.csv").set_index("lr")
    assert not rows.loc[0.0001, "converged"]  # False (NaN, unknown, would be true)
    assert rows.loc[0.0001, "note"].endswith("reached by numpy at lr=0.03")
    assert pd.isna(rows.loc[0.03, "converged"])  # the lowest itself may have stopped short: not called converged


def test_a_sweep_whose_only_job_did_not_finish_draws_nothing_and_reads_back(cli: RunCli, tmp_path: Path) -> None:
    """No figure of nothing (it was 'error: the figures could not be drawn: ValueError: Data cannot be
    log-scaled'), and show and report read a sweep of one backend back (its paired table is empty)."""
    out = tmp_path / "sweep"
    ran = cli("sweep", "--task", "celsius", "--backends", "numpy", "--epochs", "10000000", "--timeout", "1",
              "--out", str(out))
    assert ran.code == 1 and "Traceback" not in ran.err, ran.err
    assert "no job finished with a loss to draw: no figures were drawn" in ran.err, ran.err
    assert "error: the figures" not in ran.err
    assert not list(out.glob("*.png"))
    for command in ("show", "report"):
        again = cli(command, str(out))
        assert again.code == 0 and "error" not in again.err, (command, again.err)


def test_a_sweep_varies_the_optimiser_its_schedule_and_clip(cli: RunCli, tmp_path: Path) -> None:
    ran = cli("sweep", "--task", "linreg", "--optimizer", "rmsprop,adamw", "--schedule", "constant,cosine:warmup=2",
              "--clip", "global-norm:0.5", "--backends", "numpy", "--epochs", "1", "--executor", "inline", "--quiet",
              "--out", str(tmp_path / "s"))
    assert ran.code == 0, ran.err
    jobs = pd.read_csv(tmp_path / "s" / "jobs.csv")
    assert sorted(zip(jobs["optimizer"], jobs["schedule"], strict=True)) == [
        ("adamw", "constant"), ("adamw", "cosine:warmup=2"), ("rmsprop", "constant"), ("rmsprop", "cosine:warmup=2")]
    assert jobs["final_val_loss"].nunique() == 4  # each point trained its own way
    refused = cli("sweep", "--task", "linreg", "--schedule", "constant,cosine:warmup=ten", "--out", str(tmp_path / "t"))
    assert refused.code == 2 and "warmup must be a number; received 'ten'" in refused.err
    for option, values in (("--schedule", "cosine,cosine:warmup=0"), ("--clip", "value:0.1,value:.1")):
        twice = cli("sweep", "--task", "linreg", option, values, "--out", str(tmp_path / "u"))
        assert twice.code == 2 and f"{option} must list distinct values; received: {values!r}" in twice.err
