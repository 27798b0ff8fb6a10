"""A sweep on every executor: inline, the local pool, a real Dask LocalCluster and a real local Ray give the
same numbers bit for bit; a job that times out or crashes is a row with its status on each; a cluster that
is not there, or a node running other versions, is said in one line."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from backend_compare.comparison import jobs as jobs_module
from backend_compare.comparison.cache import cached, entry_count
from backend_compare.comparison.run import stopped_result
from tests.conftest import RunCli, load_backend
from tests.processes import interruptible, outcome
from tests.test_workers import ROOT, our_workers, wait_for_workers

GRID = ["--task", "linreg", "--lr", "0.01,0.03", "--optimizer", "sgd,adam", "--seeds", "2", "--epochs", "1",
        "--backends", "numpy,torch"]
NUMBERS = ["final_train_loss", "final_val_loss", "max_abs_param_error", "parity_to_reference", "steps", "status",
           "key"]


def sweep(out: Path, *args: str, tag: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "compare.py", "sweep", "--quiet", "--out", str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "WORKER_TEST_TAG": tag})


def cached_params(out: Path, keys: pd.Series) -> list[dict[str, list[float]]]:
    rows = cached(out, list(keys))
    return [rows[key]["params"] for key in keys]


def test_every_executor_gives_the_same_numbers_bit_for_bit(cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    inline = cli("sweep", *GRID, "--executor", "inline", "--out", str(tmp_path / "inline"))
    assert inline.code == 0, inline.err
    expected = pd.read_parquet(tmp_path / "inline" / "jobs.parquet")
    assert len(expected) == 2 * 2 * 2 * 2
    for executor in ("local", "dask", "ray"):
        out = tmp_path / executor
        ran = sweep(out, *GRID, "--executor", executor, "--jobs", "2")
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
        assert ran.stderr == "", f"{executor} printed: {ran.stderr}"  # the cluster's own chatter stays off
        found = pd.read_parquet(out / "jobs.parquet")
        pd.testing.assert_frame_equal(found[NUMBERS], expected[NUMBERS])
        assert cached_params(out, found["key"]) == cached_params(tmp_path / "inline", expected["key"]), executor


@pytest.mark.parametrize("executor", ["local", "dask", "ray"])
def test_a_job_past_its_timeout_is_a_row_on_every_executor(executor: str, tmp_path: Path) -> None:
    out = tmp_path / "s"
    ran = sweep(out, "--task", "celsius", "--backends", "numpy", "--epochs", "2,10000000", "--timeout", "2",
                "--executor", executor, "--jobs", "2")
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert dict(zip(jobs["epochs"], jobs["status"], strict=True)) == {2: "ok", 10000000: "timed out after 2 s"}
    assert "1 of 2 jobs did not finish: numpy seed 0 timed out after 2 s" in ran.stderr
    assert entry_count(out) == 1  # the timed-out job is not cached: it runs again next time


def test_a_crashed_job_is_its_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    out, tag = tmp_path / "s", "sweep-crash-" + str(time.monotonic_ns())
    process = subprocess.Popen([sys.executable, "compare.py", "sweep", "--quiet", "--out", str(out), "--task",
                                "celsius", "--backends", "numpy", "--epochs", "10000000,2", "--jobs", "1"],
                               cwd=ROOT, env={**os.environ, "WORKER_TEST_TAG": tag},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (worker,) = wait_for_workers(tag, 1, process)
    time.sleep(1.0)  # training the long job
    worker.send_signal(signal.SIGKILL)
    _, stderr = outcome(process, 120)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert dict(zip(jobs["epochs"], jobs["status"], strict=True)) == {10000000: "crashed (signal 9)", 2: "ok"}
    assert our_workers(tag) == []


@pytest.mark.parametrize("executor,sent,code", [("local", signal.SIGINT, 130), ("local", signal.SIGTERM, 143),
                                                ("dask", signal.SIGINT, 130), ("ray", signal.SIGINT, 130),
                                                ("ray", signal.SIGTERM, 143)])
def test_a_signal_stops_a_sweep_and_leaves_no_worker(tmp_path: Path, executor: str, sent: int, code: int) -> None:
    out, tag = tmp_path / "s", "sweep-signal-" + str(time.monotonic_ns())
    process = subprocess.Popen([sys.executable, "compare.py", "sweep", "--quiet", "--out", str(out), "--task",
                                "celsius", "--backends", "numpy", "--epochs", "10000000", "--seeds", "2",
                                "--executor", executor, "--jobs", "2"],
                               cwd=ROOT, env={**os.environ, "WORKER_TEST_TAG": tag}, start_new_session=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
    wait_for_workers(tag, 2, process)
    os.killpg(process.pid, sent)  # as a terminal's Ctrl-C does: to every process of the group
    _, stderr = outcome(process, 60)
    assert process.returncode == code and "Traceback" not in stderr, stderr
    assert "the jobs that finished are cached" in stderr and not (out / "jobs.parquet").exists()
    deadline = time.monotonic() + 10
    while our_workers(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_workers(tag) == []


# A sweep whose workers take 3 s between their process's start and their joining the sweep's busy set: the
# window where a signal once found no worker to stop, and the job then ran to its end while the sweep waited.
SLOW_TO_JOIN = """
import pathlib, sys, time
from backend_compare import cli
from backend_compare.comparison import jobs
class SlowToJoin(jobs.Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pathlib.Path(sys.argv[1]).touch()
        time.sleep(3)
jobs.Worker = SlowToJoin
sys.exit(cli.main(sys.argv[2:], prog="compare.py"))
"""


@pytest.mark.parametrize("sent,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_a_worker_starts_stops_the_sweep(tmp_path: Path, sent: int, code: int) -> None:
    out, marker, tag = tmp_path / "s", tmp_path / "starting", "sweep-window-" + str(time.monotonic_ns())
    process = subprocess.Popen([sys.executable, "-c", SLOW_TO_JOIN, str(marker), "sweep", "--quiet", "--out",
                                str(out), "--task", "celsius", "--backends", "numpy", "--epochs", "10000000",
                                "--jobs", "1"], cwd=ROOT, env={**os.environ, "WORKER_TEST_TAG": tag},
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, sent)
    try:
        _, stderr = outcome(process, 60)
    finally:  # a sweep that does not stop is the failure: it must not outlive the test
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == code and "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 10
    while our_workers(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_workers(tag) == []


@pytest.mark.parametrize("given,message", [
    (["--executor", "dask", "--address", "tcp://127.0.0.1:9"], "--address tcp://127.0.0.1:9: no Dask scheduler "
                                                               "answered (Connection refused)"),
    (["--executor", "ray", "--address", "127.0.0.1:9"], "--address 127.0.0.1:9: no Ray cluster answered"),
    (["--executor", "ray", "--address", "nowhere"], "--address must be HOST:PORT"),
    (["--address", "127.0.0.1:9"], "--address applies only with --executor dask or ray"),
    (["--executor", "dask", "--backends", "numpy@other"], "another environment's rows run on --executor local"),
    (["--curves-at", "momentum=0.5"], "'momentum' is not a setting this sweep varies (lr)"),
    (["--curves-at", "lr=0.5"], "no point of the grid has these settings"),
    (["--curves-at", "lr=fast"], "--curves-at 'lr=fast': 'fast' is not a value of lr"),
    (["--plot", "x.png"], "--plot: a sweep writes its tables and figures into --out"),
])
def test_executor_usage_errors_are_one_line_and_write_nothing(cli: RunCli, tmp_path: Path, given: list[str],
                                                              message: str) -> None:
    ran = cli("sweep", "--backends", "numpy", "--lr", "0.01,0.03", "--out", str(tmp_path / "s"), *given)
    assert ran.code == 2 and message in ran.err and ran.err.count("\n") == 1, ran.err
    assert not (tmp_path / "s").exists()


def test_a_node_with_other_versions_refuses_its_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    job = jobs_module.Job(key="k", settings={"task": "celsius"}, seed=0, backend="numpy", task="celsius",
                          task_kwargs={}, setup={"epochs": 1, "batch_size": 4},
                          options={"dtype": "float32", "optimizer": "sgd", "lr": 0.01, "momentum": None,
                                   "weight_decay": 0.0, "loss": "mse", "huber_delta": 1.0, "mode": "usual"},
                          code="0000", framework="0.0")
    row = jobs_module.run_job(job).row
    jobs_module.close_workers()
    assert row["status"].startswith("failed: backend-compare code ") and "0000 where the sweep started" in row["status"]
    assert f"numpy {np.__version__} here, 0.0 where the sweep started: install the same versions" in row["status"]
    lost = jobs_module.lost(job, "lost by the executor: KilledWorker").row
    assert lost["status"] == "lost by the executor: KilledWorker" and lost["params"] == {}
    assert stopped_result("numpy", "x").clock == []


def training_worker(tag: str, executor: str) -> psutil.Process:
    """The sweep's one training worker, once it has trained for 0.8 s of CPU time (of some 2.4: mid-job)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for process in our_workers(tag) if executor == "dask" else ray_training_workers():
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.cpu_times().user >= 0.8:
                    return process
        time.sleep(0.05)
    raise AssertionError(f"no training worker of the {executor} sweep trained for 0.8 s")


def ray_training_workers() -> list[psutil.Process]:
    """Ray starts its worker processes from its raylet, not from the sweep: a task's process is named after it."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if "backend_compare.comparison.worker" in " ".join(process.info["cmdline"] or []) and \
                    " ".join(psutil.Process(process.ppid()).cmdline()).startswith("ray::backend-compare-numpy-"):
                found.append(process)
    return found


def test_a_cluster_worker_lost_mid_job_runs_its_job_again_elsewhere(cli: RunCli, tmp_path: Path) -> None:
    """SIGKILL to the Dask or Ray worker process running the only job: the cluster runs it again on the
    worker left, the sweep finishes with that job's own numbers (bit for bit an undisturbed run's) and caches it."""
    job = ["--task", "celsius", "--backends", "numpy", "--epochs", "60000"]
    params = {}
    for executor in ("dask", "ray"):
        out, tag = tmp_path / executor, f"sweep-lost-{executor}-{time.monotonic_ns()}"
        process = subprocess.Popen([sys.executable, "compare.py", "sweep", "--quiet", "--out", str(out), *job,
                                    "--executor", executor, "--jobs", "2"], cwd=ROOT, start_new_session=True,
                                   env={**os.environ, "WORKER_TEST_TAG": tag}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            node = psutil.Process(training_worker(tag, executor).ppid())  # the cluster's worker process
            node.kill()
        finally:
            _, stderr = outcome(process, 240)
        assert process.returncode == 0 and "Traceback" not in stderr, f"{executor}: {stderr}"
        jobs = pd.read_parquet(out / "jobs.parquet")
        assert list(jobs["status"]) == ["ok"] and entry_count(out) == 1, executor
        params[executor] = cached_params(out, jobs["key"])
    undisturbed = cli("sweep", *job, "--executor", "inline", "--out", str(tmp_path / "inline"))
    assert undisturbed.code == 0, undisturbed.err
    assert params["dask"] == params["ray"] == cached_params(tmp_path / "inline", jobs["key"])


def test_a_local_cluster_lets_nobody_else_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's LocalCluster listens on loopback only. Ray's servers listen on every interface whatever they are
    told, so its local cluster must require its token: a call without it is refused, even where the
    environment turned tokens off."""
    import grpc

    from backend_compare.comparison.executors import executor

    def listening() -> dict[str, set[tuple[str, int]]]:
        ours = {child.pid: child.name() for child in psutil.Process().children(recursive=True)}
        found: dict[str, set[tuple[str, int]]] = {}
        for connection in psutil.net_connections(kind="inet"):
            if connection.status == psutil.CONN_LISTEN and connection.pid in {os.getpid(), *ours}:
                name = ours.get(connection.pid, "this process")
                found.setdefault(name, set()).add((connection.laddr.ip, connection.laddr.port))
        return found

    with executor("dask", parallel=1, address=None):
        found = listening()
    assert found and all(ip == "127.0.0.1" for addresses in found.values() for ip, _ in addresses), found
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with executor("ray", parallel=1, address=None):
        (port,) = {port for _, port in listening()["gcs_server"]}
        call = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary("/ray.rpc.NodeInfoGcsService/GetAllNodeInfo")
        with pytest.raises(grpc.RpcError) as refused:
            call(b"", timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused.value


def test_a_dask_sweep_beside_another_cluster_says_nothing_of_ports(tmp_path: Path) -> None:
    """The scheduler serves HTTP even without a dashboard; on port 8787 it warned on stderr whenever another
    cluster (another test's, under pytest -n 2) held it. It now takes a free port of the loopback."""
    import socket

    with socket.socket() as held:
        try:
            held.bind(("127.0.0.1", 8787))
            held.listen()
        except OSError:
            pass  # held by someone else already: the same situation
        ran = subprocess.run([sys.executable, "compare.py", "sweep", "--quiet", "--out", str(tmp_path / "s"),
                              "--task", "celsius", "--backends", "numpy", "--epochs", "2", "--executor", "dask",
                              "--jobs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
