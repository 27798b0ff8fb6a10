"""Bad input, divergence, missing frameworks, failures mid-run, determinism, interruption."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backend_compare import backends
from backend_compare.backends import BACKENDS, get_backend
from backend_compare.cli import run as run_command
from tests.conftest import RunCli, load_backend
from tests.processes import interruptible

ROOT = Path(__file__).resolve().parents[1]

# Each bad input and the one line a user sees (README: "Bad input and what you see").
BAD_INPUTS = [
    (["--lr", "0"], "lr must be a finite number > 0; received: 0.0"),
    (["--lr", "-1"], "lr must be a finite number > 0; received: -1.0"),
    (["--lr", "nan"], "lr must be a finite number > 0; received: nan"),
    (["--lr", "inf"], "lr must be a finite number > 0; received: inf"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--momentum", "-0.1"], "momentum must be a finite number >= 0; received: -0.1"),
    (["--weight-decay", "-1"], "weight_decay must be a finite number >= 0; received: -1.0"),
    (["--huber-delta", "0", "--loss", "huber"], "huber_delta must be a finite number > 0; received: 0.0"),
    (["--batch-size", "0"], "batch_size must be a positive integer; received: 0"),
    (["--batch-size", "2.5"], "argument --batch-size: invalid int value: '2.5'"),
    (["--epochs", "0"], "epochs must be a positive integer; received: 0"),
    (["--n-samples", "1"], "n_samples must leave at least one training and one validation row"),
    (["--noise", "-1"], "noise must be a finite number >= 0; received: -1.0"),
    (["--true-w", "2,x"], "argument --true-w: expected comma-separated numbers such as 2,-3.4; received: '2,x'"),
    (["--true-w", "nan,1"], "true_w must be a non-empty list of finite numbers; received: [nan, 1.0]"),
    (["--task", "rnn"],
     "argument --task: invalid choice: 'rnn' (choose from 'linreg', 'mlp', 'celsius', 'data', 'softmax', "
     "'classifier', 'cnn', 'sequence', 'tokens')"),
    (["--backends", "cntk"],
     f"argument --backends: expected names from {', '.join(BACKENDS)}, each with an optional @LABEL of --python"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml' (choose from 'table', 'markdown', 'csv', 'json')"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs' (choose from 'sgd', 'momentum', "
                               "'nesterov', 'adam', 'adamw', 'rmsprop', 'adagrad', 'adadelta')"),
    (["--loss", "hinge"],
     "argument --loss: invalid choice: 'hinge' (choose from 'mse', 'half-mse', 'huber', 'l1', 'bce-with-logits', "
     "'cross-entropy')"),
    (["--task", "mlp", "--activation", "swish"], "argument --activation: invalid choice: 'swish'"),
    (["--dtype", "float8"], "argument --dtype: invalid choice: 'float8' (choose from 'float32', 'float64', "
                            "'bfloat16', 'float16')"),
    (["--dtype", "bfloat16", "--task", "tokens", "--vocabulary", "1000", "--backends", "torch"],
     "layer 1 embedding(1000, 8) takes token ids up to 999; bfloat16 holds whole numbers exactly only up to 256"),
    (["--dtype", "float16", "--true-b", "1000"], "--dtype float16: the training split's targets must fit in float16 "
                                                 "squared (largest magnitude 256)"),
    (["--task", "mlp", "--hidden", "4,0"], "argument --hidden: expected comma-separated positive integers"),
    (["--task", "mlp", "--inputs", "0"], "inputs must be a positive integer; received: 0"),
    (["--seed", "-1"], "argument --seed: expected non-negative integers such as 0 or 0,1,2; received: '-1'"),
    (["--seed", "1.5"], "argument --seed: expected non-negative integers such as 0 or 0,1,2; received: '1.5'"),
    (["--seeds", "0"], "argument --seeds: expected a positive integer; received: '0'"),
    (["--seed", "²"], "argument --seed: expected non-negative integers such as 0 or 0,1,2; received: '²'"),
    (["--seeds", "²"], "argument --seeds: expected a positive integer; received: '²'"),
    (["--val-rows", "²"], "argument --val-rows: expected row positions"),
    (["--data", "/no/such.csv"], "data file '/no/such.csv' does not exist or is not a file"),
    (["--out", "/proc/forbidden/run"], "--out '/proc/forbidden/run' cannot be written"),
    (["--plot", "/no/such/dir/p.png"], "--plot '/no/such/dir/p.png' cannot be written"),
    (["--task", "mlp", "--true-b", "1"], "--true-b applies only to --task linreg; this run is --task mlp"),
    (["--backends", "numpy,numpy"], "argument --backends: expected each backend once; received numpy more than once"),
    (["--backends", "numpy,numpy:usual"],
     "--backends numpy,numpy:usual: the same row twice (numpy in mode eager, its usual mode)"),
    (["--backends", "numpy:eager,numpy", "--mode", "eager"], "the same row twice (numpy in mode eager)"),
    (["--backends", "torch:usual,torch:eager"],  # torch's usual mode is eager: one row, two names
     "--backends torch:usual,torch:eager: the same row twice (torch in mode eager, its usual mode)"),
    (["--backends", "jax,jax:compiled"], "--backends jax,jax:compiled: the same row twice (jax in mode compiled"),
    (["--backends", "torch:usual,torch:eager", "--mode", "usual,eager"], "the same row twice (torch in mode eager"),
    (["--huber-delta", "0.5"], "--huber-delta applies only with --loss huber; this run uses --loss mse"),
    (["--true-b", "1e39"], "labels made by true_w, true_b and noise reach 1e+39, beyond what float32 can square"),
]


def compare_run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "compare.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **kwargs)


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli: RunCli, tmp_path: Path, args: list[str],
                                                         message: str) -> None:
    out = tmp_path / "run"
    extra = [] if "--out" in args else ["--out", str(out)]
    result = cli("--backends", "numpy", *extra, *args) if "--backends" not in args else cli(*extra, *args)
    assert result.code == 2, result.err
    assert result.out == "" and "Traceback" not in result.err
    assert result.err.count("\n") == 1 and result.err.startswith("compare.py: error: ")
    assert message in result.err, result.err
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("name,text,message", [
    ("empty.csv", "", "is empty"),
    ("ragged.csv", "a,b\n1,2\n3\n", "is ragged: line 3 has 1 fields, the header has 2"),
    ("text.csv", "a,b\n1,2\nx,3\n", "line 3, column 'a': not a number: 'x'"),
    ("nan.csv", "a,b\n1,2\n3,nan\n", "line 3, column 'b': nan is not finite"),
])
def test_bad_data_files_through_the_cli(cli: RunCli, tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = cli("--data", str(path), "--backends", "numpy")
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err


def test_batch_size_above_the_training_set_is_clipped_with_a_warning(cli: RunCli) -> None:
    result = cli("--backends", "numpy", "--batch-size", "5000", "--format", "json")
    assert result.code == 0
    assert "warning: batch_size=5000 exceeds the 800 training rows; using 800" in result.err
    assert json.loads(result.out)["settings"]["batch_size"] == 800


def test_divergence_is_a_result_not_a_crash(cli: RunCli) -> None:
    result = cli("--lr", "10", "--format", "json")
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.count("\n") == 1 and f"{len(BACKENDS)} of {len(BACKENDS)} backends did not finish" in result.err
    rows = json.loads(result.out)["summary"]
    for row in rows:
        assert row["status"].startswith("diverged at epoch 1, step ") and "last finite loss" in row["status"]


def run_in_process(cli: RunCli, *args: str) -> tuple[int, dict, str]:
    result = cli(*args, "--format", "json", "--quiet")
    return result.code, json.loads(result.out), result.err


def test_one_backend_diverging_leaves_the_others(monkeypatch: pytest.MonkeyPatch,
                                                 cli: RunCli) -> None:
    torch_backend = load_backend("torch")
    original = torch_backend._train

    def explode_on_the_second_epoch(self, order, bounds):  # type: ignore[no-untyped-def]
        losses = np.asarray(original(self, order, bounds), dtype=np.float64)
        self.calls = getattr(self, "calls", 0) + 1  # the first epoch is two calls: its first step, timed apart
        return np.full_like(losses, np.inf) if self.calls == 3 else losses

    monkeypatch.setattr(torch_backend, "_train", explode_on_the_second_epoch)
    code, report, err = run_in_process(cli, "--epochs", "3")
    status = {row["backend"]: row["status"] for row in report["summary"]}
    others = [name for name in BACKENDS if name != "torch"]
    assert code == 1 and all(status[name] == "ok" for name in others)
    assert status["torch"].startswith("diverged at epoch 2, step 81 (last finite loss ")
    assert err.count("\n") == 1 and f"1 of {len(BACKENDS)} backends did not finish: torch diverged" in err
    assert [(r["backend_a"], r["backend_b"]) for r in report["parity"]] == list(itertools.combinations(others, 2))


def test_a_backend_failing_mid_run_is_reported_in_its_row(monkeypatch: pytest.MonkeyPatch,
                                                          cli: RunCli) -> None:
    def fail(self, order, bounds):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated engine failure\nwith a second line")

    monkeypatch.setattr(load_backend("mxnet"), "_train", fail)
    code, report, err = run_in_process(cli)
    status = {row["backend"]: row["status"] for row in report["summary"]}
    assert code == 1 and status == {**{name: "ok" for name in BACKENDS},
                                    "mxnet": "failed: RuntimeError: simulated engine failure"}
    assert {row["backend"] for row in report["params"]} == {*BACKENDS, "least-squares"} - {"mxnet"}
    assert "mxnet failed: RuntimeError: simulated engine failure" in err


ABSENT_MXNET = ("import sys, runpy; sys.modules['mxnet'] = None; "
                "sys.argv = ['compare.py', '--executor', 'inline', '--format', 'json', '--epochs', '1']; "
                "runpy.run_path('compare.py', run_name='__main__')")
BROKEN_MXNET = "raise AttributeError(\"module 'numpy' has no attribute 'PZERO'\")\n"


@pytest.fixture(scope="module")
def mxnet_missing_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """compare.py with MXNet absent (by default, and asked for by name) and with MXNet broken, all started at
    once: each is mostly its frameworks' imports on one CPU, so they overlap instead of waiting in turn."""
    broken = tmp_path_factory.mktemp("broken")
    (broken / "mxnet").mkdir()
    (broken / "mxnet" / "__init__.py").write_text(BROKEN_MXNET)
    asked_for = ABSENT_MXNET.replace("'--epochs'", "'--backends', 'mxnet', '--epochs'")
    commands = {
        "absent": ([sys.executable, "-c", ABSENT_MXNET], None),
        "absent, asked for": ([sys.executable, "-c", asked_for], None),
        "broken": ([sys.executable, "compare.py", "--format", "json", "--epochs", "1"],
                   {"PYTHONPATH": str(broken), "PATH": ""}),
    }
    started = {name: subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, (args, env) in commands.items()}
    try:
        yield started
    finally:  # a test that failed before waiting leaves no process behind
        for process in started.values():
            if process.poll() is None:
                process.kill()
            process.communicate()


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_absent_mxnet_is_skipped_and_the_others_run(mxnet_missing_runs: dict[str, subprocess.Popen[str]]) -> None:
    result = finished(mxnet_missing_runs["absent"])
    assert result.returncode == 0, result.stderr
    assert "skipping backend 'mxnet': mxnet is not installed; install it with: pip install mxnet==1.9.1" \
        in result.stderr
    assert [row["backend"] for row in json.loads(result.stdout)["summary"]] == [n for n in BACKENDS if n != "mxnet"]
    asked = finished(mxnet_missing_runs["absent, asked for"])
    assert asked.returncode == 2 and "backend 'mxnet' is unavailable" in asked.stderr


def test_broken_mxnet_is_skipped_with_the_reason(mxnet_missing_runs: dict[str, subprocess.Popen[str]]) -> None:
    result = finished(mxnet_missing_runs["broken"])
    assert result.returncode == 0, result.stderr
    assert "skipping backend 'mxnet'" in result.stderr and "AttributeError" in result.stderr
    assert "pip install mxnet==1.9.1" in result.stderr


IMPORT_FAILURES = {  # what a framework has been seen to raise on import, and the shape of its message
    "ImportError": "raise ImportError('libfoo.so: cannot open shared object file')",
    "AttributeError": "raise AttributeError(\"module 'numpy' has no attribute 'bool'\")",
    "OSError": "raise OSError(12, 'Cannot allocate memory')",
    "RuntimeError": "raise RuntimeError('Cannot re-initialize CUDA in forked subprocess')",
    "ValueError": "raise ValueError('invalid literal in MXNET_CPU_WORKER_NTHREADS')",
    "MXNetError": "class MXNetError(Exception): pass\n"
                  "raise MXNetError('Traceback (most recent call last):\\n  File engine.cc\\n"
                  "MXNetError: Cannot find Engine Bogus')",
}


@pytest.mark.parametrize("kind", sorted(IMPORT_FAILURES))
def test_a_framework_failing_on_import_in_any_way_is_skipped_or_refused(
        cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    module = f"fake_framework_{kind.lower()}"
    (tmp_path / f"{module}.py").write_text(IMPORT_FAILURES[kind] + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends._REGISTRY, "mxnet",
                        backends.Registration(module, "Backend", module, "pip install fake"))
    default = cli("--epochs", "1", "--format", "json", "--quiet")
    assert default.code == 0, default.err
    assert [row["backend"] for row in json.loads(default.out)["summary"]] == [n for n in BACKENDS if n != "mxnet"]
    skipped = [line for line in default.err.splitlines() if "'mxnet'" in line]
    assert len(skipped) == 1 and "skipping backend 'mxnet': " in skipped[0] and kind in skipped[0], default.err
    named = cli("--backends", "numpy,mxnet", "--epochs", "1", "--quiet")
    assert named.code == 2 and named.out == ""
    assert named.err.count("\n") == 1 and "backend 'mxnet' is unavailable" in named.err and kind in named.err
    assert "Traceback" not in default.err + named.err


def numbers_without_timing(stdout: str) -> dict:
    report = json.loads(stdout)
    for rows in report.values():
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                for column in ("seconds", "compile_seconds", "steps_per_s", "us_per_step"):
                    row.pop(column, None)
    return report


@pytest.mark.parametrize("args", [["--task", "linreg"], ["--task", "mlp", "--epochs", "20", "--init", "native"]])
def test_the_same_command_twice_gives_identical_numbers(cli: RunCli, args: list[str]) -> None:
    first, second = (cli(*args, "--format", "json") for _ in range(2))
    assert first.code == second.code == 0
    assert numbers_without_timing(first.out) == numbers_without_timing(second.out)


# Starts compare.py with its training call wrapped so that the second backend's start creates a marker
# file: the test then knows, without sleeping for a guessed time, that one backend has finished and
# the next is training. The second backend then trains again and again until the signal comes, however late
# a loaded machine lets the test send it (one pass of 20000 epochs took less than the test's reaction once).
SECOND_BACKEND_STARTED = """
import pathlib, sys
from backend_compare import cli
from backend_compare.comparison import jobs
original, calls = jobs.train, []
def announce(backend, *args, **kwargs):
    calls.append(backend.name)
    if len(calls) < 2:
        return original(backend, *args, **kwargs)
    pathlib.Path(sys.argv[1]).touch()
    while True:
        original(backend, *args, **kwargs)
jobs.train = announce
sys.exit(cli.main(sys.argv[2:], prog="compare.py"))
"""


@pytest.mark.parametrize("sent,code,how", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_mid_training_prints_what_finished_writes_nothing(tmp_path: Path, sent: int, code: int,
                                                                   how: str) -> None:
    out, marker = tmp_path / "run", tmp_path / "training"
    process = subprocess.Popen(
        [sys.executable, "-c", SECOND_BACKEND_STARTED, str(marker), "--executor", "inline", "--task", "celsius",
         "--backends", "numpy,torch",
         "--epochs", "20000", "--out", str(out), "--quiet"], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sent)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:  # a run that does not stop is the failure: it must not outlive the test
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and f"{how}: showing the runs that finished" in stderr
    losses = stdout.split("\nLosses\n")[1]
    assert "numpy" in losses and " ok " in losses and how in losses
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training"]  # no run folder, no temporary one


def test_plot_when_every_backend_failed_is_a_warning_not_a_crash(monkeypatch: pytest.MonkeyPatch,
                                                                 cli: RunCli,
                                                                 tmp_path: Path) -> None:
    def fail(self, order, bounds):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(get_backend("numpy"), "_train", fail)
    code, report, err = run_in_process(cli, "--backends", "numpy", "--plot", str(tmp_path / "p.png"))
    assert code == 1 and report["summary"][0]["status"] == "failed: RuntimeError: simulated failure"
    assert "no loss curve to plot" in err and not (tmp_path / "p.png").exists()


def test_a_plot_matplotlib_cannot_draw_leaves_the_run_folder_and_one_line(
        monkeypatch: pytest.MonkeyPatch, cli: RunCli, tmp_path: Path) -> None:
    def broken(figure: object, fmt: str = "png") -> bytes:
        raise RuntimeError("Could not load font\nsecond line")

    monkeypatch.setattr(run_command, "figure_bytes", broken)
    result = cli("--backends", "numpy", "--epochs", "2", "--plot", str(tmp_path / "p.svg"),
                 "--out", str(tmp_path / "run"))
    assert result.code == 1 and "\nLosses\n" in result.out
    assert result.err == (f"compare.py: error: the results could not be saved: the plot could not be drawn: "
                          f"RuntimeError: Could not load font; written whole: {tmp_path / 'run'}; nothing else\n")
    assert not (tmp_path / "p.svg").exists() and (tmp_path / "run" / "results.json").exists()
    assert not (tmp_path / "run" / "loss_curves.png").exists()


def test_a_display_back_end_that_does_not_exist_does_not_stop_the_plot(tmp_path: Path) -> None:
    result = compare_run("--backends", "numpy", "--epochs", "2", "--plot", str(tmp_path / "p.png"),
                         env={**os.environ, "MPLBACKEND": "nonsense"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args,message", [
    (["--data", "{d}/d.png", "--plot", "{d}/d.png"], "--plot '{d}/d.png' is the run's --data file"),
    (["--data", "{d}/run/d.csv", "--out", "{d}/run"], "--out '{d}/run' would replace --data '{d}/run/d.csv'"),
    (["--plot", "{d}/run/p.png", "--out", "{d}/run"], "--out '{d}/run' would replace --plot '{d}/run/p.png'"),
    (["--data", "{d}/d.png", "--plot", "{d}/link.png"], "--plot '{d}/link.png' is the run's --data file"),
])
def test_an_output_that_would_replace_an_input_is_refused(cli: RunCli, tmp_path: Path, args: list[str],
                                                          message: str) -> None:
    rows = "a,b\n" + "".join(f"{i},{2 * i}\n" for i in range(10))
    for path in (tmp_path / "d.png", tmp_path / "run" / "d.csv"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(rows)
    (tmp_path / "link.png").symlink_to(tmp_path / "d.png")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    result = cli("--backends", "numpy", *[arg.format(d=tmp_path) for arg in args])
    assert result.code == 2 and result.out == "" and message.format(d=tmp_path) in result.err, result.err
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before


def test_a_terminal_that_cannot_encode_the_tables_gets_them_escaped() -> None:
    result = compare_run("--backends", "numpy", "--epochs", "1", env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.startswith("task linreg \\xb7 seed 0")


@pytest.mark.parametrize("redirect,reason", [(">/dev/full", "No space left on device"),
                                             (">&-", "standard output is closed")])
def test_standard_output_that_cannot_be_written_is_one_line(tmp_path: Path, redirect: str, reason: str) -> None:
    """The results still saved (--out), the failure to print them one line, exit 1, no traceback."""
    out = tmp_path / "run"
    ran = subprocess.run(f"{sys.executable} compare.py --backends numpy --epochs 1 --out {out} {redirect}",
                         shell=True, cwd=ROOT, capture_output=False, stderr=subprocess.PIPE, text=True, timeout=300)
    assert ran.returncode == 1 and ran.stderr == (
        f"compare.py: error: standard output could not be written ({reason}): the results were not printed; "
        "send them to a file or a terminal that takes them\n"), ran.stderr
    assert (out / "results.json").exists()
