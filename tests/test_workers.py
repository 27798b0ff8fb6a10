"""Worker processes: the same numbers as in-process, bit for bit; a crash or a hang is one backend's row;
no worker outlives the program."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from tests.conftest import RunCli
from tests.processes import interruptible, outcome

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "compile_seconds", "steps_per_s", "us_per_step")


def without_timing(report: dict[str, Any]) -> dict[str, Any]:
    report["options"].pop("parallel")  # how many workers trained at once: how it was timed
    report["options"].pop("threads", None)  # each worker's framework threads (inline: the process's own)
    for rows in [*report.values(), *report.get("by_seed", {}).values()]:  # each seed's rows too
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                for column in [c for c in row if c.removesuffix("_std") in TIMING]:
                    row.pop(column)
    return report


@pytest.mark.parametrize("args", [
    ["--backends", "numpy,torch,mxnet", "--dtype", "float64", "--curves"],
    ["--task", "mlp", "--backends", "numpy,torch", "--init", "native", "--epochs", "20"],
    ["--task", "celsius", "--model", "mlp", "--backends", "numpy,mxnet", "--seeds", "2", "--epochs", "300"],
    ["--task", "linreg", "--backends", "torch,mxnet", "--optimizer", "adam", "--lr", "0.01", "--loss", "huber",
     "--init", "native", "--dtype", "float64"],
    ["--data", "{data}", "--model", "mlp", "--backends", "numpy,torch",
     "--epochs", "50", "--seeds", "2"],
], ids=["linreg-float64", "mlp-native", "celsius-mlp-seeds", "adam-huber-native", "data-mlp-seeds"])
def test_workers_give_the_inline_numbers_bit_for_bit(cli: RunCli, args: list[str], tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x1,x2,y\n" + "".join(f"{i / 7:.6f},{(i * 3 % 11) / 5:.6f},{(i % 5) / 3:.6f}\n" for i in range(60)))
    args = [arg.replace("{data}", str(data)) for arg in args]
    inline = cli(*args, "--format", "json", "--executor", "inline")
    workers = cli(*args, "--format", "json", "--executor", "process")
    assert inline.code == workers.code == 0, workers.err
    assert without_timing(json.loads(workers.out)) == without_timing(json.loads(inline.out))


def our_workers(tag: str) -> list[psutil.Process]:
    """Live worker processes started by the run whose environment carries `tag`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "backend_compare.comparison.worker" in " ".join(process.info["cmdline"] or []) and \
                    process.environ().get("WORKER_TEST_TAG") == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    tag = uuid.uuid4().hex
    process = subprocess.Popen([sys.executable, "compare.py", "--format", "json", "--quiet", *args], cwd=ROOT,
                               env={**os.environ, "WORKER_TEST_TAG": tag}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    return process, tag


def wait_for_workers(tag: str, count: int, process: subprocess.Popen[str]) -> list[psutil.Process]:
    """The `count` workers of the run tagged `tag`, once started; if they do not start, the run and its
    workers are killed (a test's failure must not leave a ten-million-epoch run on the machine)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers = sorted(our_workers(tag), key=lambda p: p.create_time())
        if len(workers) == count:
            return workers
        time.sleep(0.05)
    for worker in our_workers(tag):
        worker.kill()
    outcome(process, 0.1)  # kills it (and its session, when it leads one), and raises TimeoutExpired
    raise AssertionError(f"{count} workers did not start")


def test_a_worker_killed_mid_run_is_its_row_and_the_others_finish() -> None:
    process, tag = start("--task", "celsius", "--backends", "numpy,torch", "--epochs", "60000")
    workers = wait_for_workers(tag, 2, process)
    deadline = time.monotonic() + 120  # the worker names itself bc-train-torch once its job has started
    while not any(worker.name() == "bc-train-torch" for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    (torch_worker,) = [worker for worker in workers if worker.name() == "bc-train-torch"]
    torch_worker.send_signal(signal.SIGKILL)
    stdout, stderr = outcome(process, 300)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    statuses = {row["backend"]: row["status"] for row in json.loads(stdout)["summary"]}
    assert statuses == {"numpy": "ok", "torch": "crashed (signal 9)"}
    assert "torch crashed (signal 9)" in stderr
    assert our_workers(tag) == []


def test_a_job_past_the_timeout_is_stopped_and_says_so() -> None:
    process, tag = start("--task", "celsius", "--backends", "numpy", "--epochs", "10000000", "--timeout", "1")
    stdout, stderr = outcome(process, 120)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert [row["status"] for row in json.loads(stdout)["summary"]] == ["timed out after 1 s"]
    assert our_workers(tag) == []


@pytest.mark.parametrize("sent,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_worker_and_leaves_none(sent: int, code: int) -> None:
    process, tag = start("--task", "celsius", "--backends", "numpy,torch", "--epochs", "10000000")
    workers = wait_for_workers(tag, 2, process)
    deadline = time.monotonic() + 120  # both training (each names itself bc-train-NAME): no seed has finished
    while not all(worker.name().startswith("bc-train-") for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sent)
    stdout, stderr = outcome(process, 120)
    assert process.returncode == code and "Traceback" not in stderr, stderr
    how = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}[sent]
    assert [row["status"] for row in json.loads(stdout)["summary"]] == [how, how]  # the seed it cut short
    assert our_workers(tag) == []


def test_the_main_process_killed_takes_its_workers_with_it() -> None:
    process, tag = start("--task", "celsius", "--backends", "numpy,torch", "--epochs", "10000000")
    wait_for_workers(tag, 2, process)
    process.kill()
    outcome(process, 60)
    deadline = time.monotonic() + 10
    while our_workers(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_workers(tag) == []


NP2_PYTHON = os.environ.get("NP2_PYTHON")  # `make test` builds it: build/np2, NumPy 2 and this package


@pytest.mark.skipif(NP2_PYTHON is None, reason="NP2_PYTHON not set: `make test` builds the NumPy 2 environment")
def test_the_numpy_backend_on_numpy_2_trains_as_here(cli: RunCli) -> None:
    result = cli("--backends", "numpy,numpy@np2", "--python", f"np2={NP2_PYTHON}", "--dtype", "float64",
                 "--executor", "process", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["environments"]["numpy@np2"].split(" · numpy ")[1].startswith("2.")
    assert report["versions"]["numpy"].startswith("1.")
    (parity,) = report["parity"]
    assert parity["max_abs_param_diff"] <= 1e-12 and parity["max_abs_step_loss_diff"] <= 1e-12, parity


@pytest.mark.parametrize("args,message", [
    (["--backends", "numpy@gone"], "--backends numpy@gone: no interpreter is labelled 'gone'; give --python gone=PATH"),
    (["--backends", "numpy@x", "--python", "x=/no/such/python"], "--python x=/no/such/python: not an executable file"),
    (["--backends", "numpy@x", "--python", "x=/bin/false"], "backend 'numpy@x' could not start"),
    (["--backends", "numpy@x", "--python", f"x={sys.executable}", "--executor", "inline"],
     "--backends numpy@x: another environment needs --executor process"),
    (["--python", "no-equals"], "expected LABEL=PATH"),
])
def test_a_bad_environment_is_one_line(cli: RunCli, args: list[str], message: str) -> None:
    result = cli(*args, "--executor", "process") if "--executor" not in args else cli(*args)
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result.err
    assert message in result.err, result.err


def test_in_worker_keeps_the_errors_type_and_ends_when_closed() -> None:
    from backend_compare import in_worker, mlp_spec

    with in_worker("numpy", mlp_spec(2, (), 1, "tanh"), dtype="float64") as model:
        with pytest.raises(ValueError, match=r"X must have shape \(n, 2\); received shape \(3, 5\)"):
            model.predict(np.ones((3, 5)))
        assert model.predict(np.ones((3, 2))).shape == (3, 1)
        process = model._worker.process
    assert process.poll() is not None
    with pytest.raises(ValueError, match=r"^the numpy worker was closed: make a new in_worker\('numpy', …\) to go on$"):
        model.predict(np.ones((3, 2)))


@pytest.mark.skipif(NP2_PYTHON is None, reason="NP2_PYTHON not set: `make test` builds the NumPy 2 environment")
def test_in_worker_on_numpy_2_matches_here() -> None:
    from backend_compare import get_backend, in_worker, mlp_spec

    spec = mlp_spec(2, (4,), 1, "tanh")
    X, y = np.linspace(-1, 1, 32).reshape(16, 2), np.linspace(0, 1, 16)
    here = get_backend("numpy")(spec, dtype="float64")
    with in_worker("numpy", spec, python=NP2_PYTHON, dtype="float64") as there:
        assert there.versions["numpy"].startswith("2.")
        there.set_params(here.get_params())
        for model in (here, there):
            model.fit(X, y, epochs=3, batch_size=4)
        # Bit for bit on an AVX2 machine; on an AVX-512 one, NumPy 2.4's vectorised functions put one parameter a
        # unit in the last place from NumPy 1.26's (measured: 1.4e-17 on 0.067): the same code, another libm.
        for name, value in here.get_params().items():
            np.testing.assert_allclose(there.get_params()[name], value, rtol=1e-14, atol=0)


def test_labels_come_from_pyproject_too(cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(f'[tool.backend-compare.python]\nhere = "{sys.executable}"\n')
    monkeypatch.chdir(tmp_path)
    result = cli("--backends", "numpy,numpy@here", "--executor", "process", "--epochs", "1", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [row["backend"] for row in report["summary"]] == ["numpy", "numpy@here"]
    assert report["environments"]["numpy@here"].startswith("python ")


def test_a_worker_of_another_protocol_is_refused(cli: RunCli, tmp_path: Path) -> None:
    other = tmp_path / "python"
    other.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from backend_compare.comparison import "
                     "protocol; protocol.PROTOCOL = 0; from backend_compare.comparison.worker import main; "
                     "sys.exit(main())'\n")
    other.chmod(0o755)
    result = cli("--backends", "numpy@old", "--python", f"old={other}", "--executor", "process")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "(protocol 0); this is" in result.err and "install the same version there" in result.err


def test_a_second_worker_starts_only_where_it_pays_for_its_start(cli: RunCli,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Six tiny jobs of one backend on two lanes: the worker that checked the row serves them all; a second
    one would take longer to start than the jobs it could take over (the default run started a second torch
    worker, 2 s of import, for jobs of 0.05 s)."""
    from backend_compare.comparison import workers
    from backend_compare.comparison.executors import worth_another_worker

    started: list[str] = []
    made = workers.Worker.__init__

    def counted(self: Any, row: Any, python: str, env: Any = None) -> None:
        started.append(str(row))
        made(self, row, python, env)

    monkeypatch.setattr(workers.Worker, "__init__", counted)
    ran = cli("--backends", "numpy", "--seeds", "6", "--executor", "process", "--jobs", "2", "--epochs", "1")
    assert ran.code == 0, ran.err
    assert started == ["numpy"]
    nan = float("nan")
    assert worth_another_worker(waiting=5, lanes=0, per_job=nan, start=nan, running=0.0)  # none yet: start one
    assert not worth_another_worker(waiting=5, lanes=1, per_job=0.05, start=2.0, running=0.01)  # 0.25 s left
    assert worth_another_worker(waiting=5, lanes=1, per_job=10.0, start=2.0, running=0.5)  # 50 s left: halve it
    assert not worth_another_worker(waiting=5, lanes=1, per_job=nan, start=2.0, running=0.4)  # a first job's warm-up
    assert worth_another_worker(waiting=1, lanes=1, per_job=nan, start=0.4, running=0.5)  # a long job: don't queue
