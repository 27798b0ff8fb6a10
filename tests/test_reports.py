"""Curves, plots, least squares, seeds, parity matrix, saved runs, show/diff, progress."""

from __future__ import annotations

import concurrent.futures
import fcntl
import io
import itertools
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend_compare.backends import BACKENDS
from backend_compare.comparison import reference
from backend_compare.comparison.plot import loss_figure
from backend_compare.comparison.report import FRAMEWORK_PACKAGES, build_report, seed_tables
from backend_compare.comparison.run import REFERENCE, build_backends, reference_result, train
from backend_compare.tasks import get_task
from tests.conftest import RunCli, load_backend

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"dtype": "float64", "optimizer": "sgd", "lr": 0.03, "momentum": None, "weight_decay": 0.0,
           "loss": "mse", "huber_delta": 1.0}


def compare_process(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "compare.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kwargs)


def linreg_report(init: str = "shared") -> dict:
    problem = get_task("linreg").make_problem(seed=0)
    built = build_backends(problem, list(BACKENDS), OPTIONS)
    results = [train(b, problem, init=init, record=True) for b in built.values()]
    header = {"task": "linreg", "settings": problem.settings, "seeds": [0],
              "options": {**OPTIONS, "init": init, "curves": True, "relative": False}}
    return build_report(header, seed_tables(problem, [*results, reference_result(problem, OPTIONS)], init=init))


def test_figure_has_one_training_line_per_backend_and_a_parity_panel() -> None:
    figure = loss_figure(linreg_report())
    losses, parity = figure.axes
    labelled = [line.get_label() for line in losses.get_lines() if not line.get_label().startswith("_")]
    assert labelled == list(BACKENDS)
    assert len(losses.get_lines()) == 3 * len(BACKENDS)  # batches, training split and validation
    validation = [line for line in losses.get_lines() if line.get_label().endswith(" validation")]
    assert len(validation) == len(BACKENDS) and all(line.get_marker() == "o" for line in validation)
    assert losses.get_xlabel() == "optimiser step"
    assert losses.get_yscale() == "log" and parity.get_yscale() == "log"
    assert [line.get_label() for line in parity.get_lines()] == [f"{a} vs {b}" for a, b in
                                                                  itertools.combinations(BACKENDS, 2)] + [
        "float64 tolerance (4.2e-09)"]  # atol + rtol x the largest parameter (4.2)
    assert "linreg" in figure._suptitle.get_text() and "seed 0" in figure._suptitle.get_text()


def test_native_mode_figure_has_no_parity_panel() -> None:
    assert len(loss_figure(linreg_report(init="native")).axes) == 1


def test_plot_file_is_a_png(cli: RunCli, tmp_path: Path) -> None:
    target = tmp_path / "curves.png"
    result = cli("--backends", "numpy,torch", "--plot", str(target), "--quiet")
    assert result.code == 0, result.err
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_least_squares_row_matches_an_independent_solve() -> None:
    problem = get_task("linreg").make_problem(seed=2, true_w=(1.0, -2.0, 0.5), noise=0.3)
    design = np.hstack([problem.X_train, np.ones((len(problem.X_train), 1))])
    solution = np.linalg.solve(design.T @ design, design.T @ problem.y_train[:, 0])  # normal equations
    result = reference_result(problem, OPTIONS)
    assert result is not None and result.backend == "least-squares" and result.init == REFERENCE
    np.testing.assert_allclose(result.params["0.weight"][0], solution[:3], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.params["0.bias"], solution[3:], rtol=0, atol=1e-10)
    residual = design @ solution - problem.y_train[:, 0]
    assert result.final_train_loss == pytest.approx(np.mean(residual**2), rel=1e-10)
    assert reference_result(get_task("mlp").make_problem(epochs=1), OPTIONS) is None


@pytest.mark.parametrize("loss,weight_decay,name", [("huber", 0.0, "huber-optimum"), ("huber", 0.01, "huber-optimum"),
                                                    ("mse", 0.01, "ridge-optimum"), ("half-mse", 0.0, "least-squares")])
def test_reference_row_is_the_optimum_of_the_runs_objective(loss: str, weight_decay: float, name: str) -> None:
    """The objective's gradient vanishes there (to 1e-10), and no nearby point is lower."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3 + rng.standard_t(2, size=(300, 1))  # heavy tails: Huber matters
    optimum = reference.solve(X, y, bias=True, loss=loss, huber_delta=0.5, weight_decay=weight_decay)
    assert optimum.name == name and optimum.gradient_norm <= 1e-10

    def objective(params: dict) -> float:
        penalty = 0.5 * weight_decay * sum(float((v**2).sum()) for v in params.values())
        return reference.mean_loss(X, y, params, loss, 0.5) + penalty

    best = objective(optimum.params)
    for _ in range(20):
        nudged = {k: v + rng.normal(0.0, 1e-3, size=v.shape) for k, v in optimum.params.items()}
        assert objective(nudged) > best


def test_no_backend_beats_the_huber_reference(cli: RunCli) -> None:
    report = json.loads(cli("--loss", "huber", "--huber-delta", "0.005", "--epochs", "10", "--format", "json").out)
    losses = {row["backend"]: row["final_train_loss"] for row in report["losses"]}
    assert report["reference"] == "huber-optimum" and "least-squares" not in losses
    for backend in BACKENDS:
        assert losses[backend] >= losses["huber-optimum"] * (1 - 1e-6), backend


def test_seeds_give_mean_and_std(cli: RunCli) -> None:
    result = cli("--backends", "numpy", "--seeds", "3", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["seeds"] == [0, 1, 2]
    row = next(r for r in report["summary"] if r["backend"] == "numpy")
    assert row["final_val_loss_std"] > 0 and row["max_abs_param_error_std"] > 0
    table = cli("--backends", "numpy", "--seed", "0,1,2")
    assert " ± " in table.out


def test_every_report_has_a_parity_matrix_and_timing() -> None:
    report = linreg_report()
    pairs = [(row["backend_a"], row["backend_b"]) for row in report["parity"]]
    assert pairs == list(itertools.combinations(BACKENDS, 2))
    assert all(row["max_abs_param_diff"] < 1e-9 for row in report["parity"])
    row = next(r for r in report["losses"] if r["backend"] == "torch")
    steady = 240 - 1  # the first step (every batch has 10 rows) is compile_seconds
    assert row["steps"] == 240 and row["steps_per_s"] == pytest.approx(steady / row["seconds"])
    assert row["us_per_step"] == pytest.approx(1e6 * row["seconds"] / steady) and row["compile_seconds"] > 0
    assert set(report["versions"]) == {"python", *FRAMEWORK_PACKAGES} and "CPUs" in report["machine"]
    assert {"tensorflow", "keras", "flax", "optax"} <= set(FRAMEWORK_PACKAGES)


def test_table_formatting(cli: RunCli) -> None:
    result = cli("--backends", "numpy,torch", "--quiet")
    lines = result.out.splitlines()
    assert lines[0].startswith("task linreg · seed 0 · float32") and "torch 2.13.0" in lines[2]
    assert lines[1] == "linreg: true_w 2,-3.4 · true_b 4.2 · n_samples 1000 · noise 0.01 · val_fraction 0.2"
    losses = lines[lines.index("Losses") + 1:]
    assert "e-05" in losses[1] and "*" in result.out and "(* lowest in its column among the trained" in result.out
    assert max(len(line) for line in lines) <= 120  # wide tables wrap
    markdown = cli("--backends", "numpy", "--format", "markdown", "--quiet").out
    assert "### Parameters" in markdown and "|:-" not in markdown.split("### Losses")[0].split("\n")[0]


@pytest.mark.parametrize("fmt", ["table", "markdown", "json", "csv"])
def test_show_reproduces_a_saved_run_byte_for_byte(cli: RunCli, tmp_path: Path, fmt: str) -> None:
    run = cli("--backends", "numpy,torch", "--seeds", "2", "--curves", "--out", str(tmp_path / "run"),
                  "--format", fmt, "--quiet")
    assert run.code == 0, run.err
    shown = cli("show", str(tmp_path / "run"), "--format", fmt)
    assert shown.code == 0, shown.err
    assert shown.out == run.out
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert {"results.json", "report.md", "loss_curves.png", "summary.csv", "params.csv", "losses.csv",
            "parity.csv", "curves.csv"} <= set(files)
    assert not [name for name in files if name.endswith(".tmp")]


def test_diff_flags_a_worse_metric(cli: RunCli, tmp_path: Path) -> None:
    before = tmp_path / "before"
    assert cli("--backends", "numpy,torch", "--out", str(before), "--quiet").code == 0
    same = cli("diff", str(before), str(before))
    assert same.code == 0, same.err
    assert "max_abs_param_error" in same.out and "WORSE" not in same.out

    doctored = tmp_path / "after"
    shutil.copytree(before, doctored)
    report = json.loads((doctored / "results.json").read_text())
    report["summary"][1]["max_abs_param_error"] *= 3
    (doctored / "results.json").write_text(json.dumps(report))
    worse = cli("diff", str(before), str(doctored))
    assert worse.code == 1
    assert "torch max_abs_param_error" in worse.err and "+200.0%" in worse.out
    assert cli("diff", str(doctored), str(before)).code == 0  # better is not a failure


def test_show_and_diff_errors(cli: RunCli, tmp_path: Path) -> None:
    result = cli("show", str(tmp_path))
    assert result.code == 2 and "is not a saved run" in result.err and result.err.count("\n") == 1


def stderr_on_a_terminal(*args: str) -> tuple[subprocess.CompletedProcess[str], bytes]:
    """Run compare.py with stderr on a 100-column pseudo-terminal; return the run and what the terminal got.
    The terminal is read while the run goes on: a run slowed down by a loaded machine redraws its progress more
    often, and a terminal nobody reads would fill and stop it."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    chunks: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO once the terminal side is closed and drained
                return
            if not chunk:
                return
            chunks.append(chunk)

    try:
        with subprocess.Popen([sys.executable, "compare.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=terminal, text=True) as process:
            os.close(terminal)  # the run holds its own end: reading stops when the run has closed it
            terminal = -1
            reader = threading.Thread(target=read_terminal, daemon=True)
            reader.start()
            try:
                stdout, _ = process.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
            reader.join(timeout=60)
    finally:
        if terminal != -1:
            os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, None), b"".join(chunks)


def test_progress_goes_to_a_terminal_only() -> None:
    args = ("--task", "celsius", "--backends", "numpy", "--epochs", "200000")  # 4 s of training: past the 2 s delay
    # The three runs at once: each waits mostly on its own training, and sharing the CPUs only makes each run
    # longer, further past the delay, so the progress bar has all the more time to show where it would.
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        piped_run = pool.submit(compare_process, *args)
        terminal_run = pool.submit(stderr_on_a_terminal, *args)
        quiet_run = pool.submit(stderr_on_a_terminal, *args, "--quiet")
    piped = piped_run.result()
    assert piped.returncode == 0
    assert piped.stdout.startswith("task celsius") and "\r" not in piped.stdout and "epoch/s" not in piped.stdout
    assert "epoch/s" not in piped.stderr and "\r" not in piped.stderr

    run, shown = terminal_run.result()
    assert run.returncode == 0 and run.stdout.startswith("task celsius") and "\r" not in run.stdout
    assert b"epoch/s" in shown, shown[-300:]
    quiet, shown = quiet_run.result()
    assert quiet.returncode == 0 and b"epoch/s" not in shown


@pytest.mark.parametrize("name,magic", [("p.svg", b"<?xml"), ("p.pdf", b"%PDF"), ("p.PNG", b"\x89PNG")])
def test_plot_writes_the_format_its_name_says(cli: RunCli, tmp_path: Path, name: str, magic: bytes) -> None:
    assert cli("--backends", "numpy", "--epochs", "1", "--plot", str(tmp_path / name)).code == 0
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert cli("--backends", "numpy", "--epochs", "2", "--plot", str(tmp_path / name)).code == 0  # ours: replaced


@pytest.mark.parametrize("name", ["thesis.pdf", "figure.png", "drawing.svg"])
def test_plot_onto_a_users_file_is_refused_and_the_file_kept(cli: RunCli, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"%PDF-1.4 years of work")
    result = cli("--backends", "numpy", "--epochs", "1", "--plot", str(tmp_path / name))
    assert (result.code, result.out) == (2, "") and result.err.count("\n") == 1, result.err
    assert f"--plot {str(tmp_path / name)!r} exists and was not written by backend-compare" in result.err
    assert (tmp_path / name).read_bytes() == b"%PDF-1.4 years of work"


@pytest.mark.parametrize("name,message", [("p.jpg", "received .jpg"), ("plot", "received no extension")])
def test_plot_with_another_extension_is_refused(cli: RunCli, tmp_path: Path, name: str, message: str) -> None:
    result = cli("--backends", "numpy", "--plot", str(tmp_path / name))
    assert result.code == 2 and "must end in .png, .svg, .pdf" in result.err and message in result.err
    assert list(tmp_path.iterdir()) == []


def test_the_lowest_mark_compares_like_with_like(cli: RunCli) -> None:
    load_backend("torch")
    result = cli("--backends", "numpy,torch", "--dtype", "float64", "--quiet")
    losses = result.out.split("Losses\n")[1].split("\n\n")[0]
    rows = {line.split()[0]: line for line in losses.splitlines()[1:] if line.strip()}
    assert "*" not in rows["least-squares"]  # the exact optimum is the mark of what is possible, not a contender
    # numpy and torch reach the same losses in float64: a column of equal values marks nobody
    assert rows["numpy"].split()[4] == rows["torch"].split()[4] and "*" not in rows["numpy"].split()[5]
    diverged = cli("--backends", "numpy,torch", "--lr", "3", "--quiet")
    table = diverged.out.split("Losses\n")[1].split("\n\n")[0]
    assert "diverged" in table and "*" not in table  # a diverged row is never "best", even at stopping soonest


def test_a_run_far_from_the_optimum_is_noted_as_not_converged(cli: RunCli) -> None:
    result = cli("--backends", "numpy", "--epochs", "1", "--lr", "0.0001", "--quiet")
    assert "Notes\nnumpy: not converged: training loss" in result.out and "the exact optimum's" in result.out
    converged = cli("--backends", "numpy", "--quiet")
    assert "not converged" not in converged.out


def test_csv_is_one_table_pandas_reads(cli: RunCli) -> None:
    load_backend("torch")
    result = cli("--backends", "numpy,torch", "--seeds", "2", "--format", "csv", "--quiet")
    table = pd.read_csv(io.StringIO(result.out))
    assert list(table["backend"]) == ["numpy", "torch"]
    assert {"final_val_loss", "final_val_loss_std", "max_abs_param_error", "us_per_step"} <= set(table.columns)


def test_curves_are_summarised_unless_every_point_is_asked_for(cli: RunCli) -> None:
    summary = cli("--backends", "numpy", "--curves", "--quiet").out.split("along the steps\n")[1]
    every = cli("--backends", "numpy", "--curves", "all", "--quiet").out.split("along the steps\n")[1]
    assert len(summary.strip().splitlines()) == 1 + 6 and len(every.strip().splitlines()) == 1 + 51
    assert summary.strip().splitlines()[1].split()[:2] == ["numpy", "0"]
    assert every.strip().splitlines()[-1].split()[:2] == summary.strip().splitlines()[-1].split()[:2]  # the last step


def test_a_shared_run_whose_backend_failed_shows_no_initialisation_table(monkeypatch: pytest.MonkeyPatch,
                                                                         cli) -> None:  # type: ignore[no-untyped-def]
    from backend_compare.backends import get_backend

    def fail(self, order, bounds):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(get_backend("numpy"), "_train", fail)
    ran = cli("--backends", "numpy", "--epochs", "1")
    assert ran.code == 1 and "failed: RuntimeError: simulated failure" in ran.out
    assert "Native initialisation" not in ran.out
