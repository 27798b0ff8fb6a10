"""Where jobs run: in this process (`inline`), or each backend in a worker process of its own
(`process`, the default), up to --jobs at once. A worker that crashes, hangs past the timeout or is
killed becomes its backend's row; the others finish. A worker dies with this process.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from .. import __version__
from ..backends import Backend, RowName, error_line
from ..layers import ModelSpec
from ..tasks import Problem
from . import protocol
from .run import BackendResult, stopped_result, train

EXECUTORS = ("process", "inline")
PARENT_VARIABLE = "BACKEND_COMPARE_PARENT"  # the main process's pid, for the worker to die with it
START_SECONDS = 120  # for a worker to start and import its framework
STOP_SECONDS = 5  # for a worker to leave after `stop`, before it is killed


class WorkerFailed(Exception):
    """A worker that could not start, or is no longer there; the message is the row's status."""


class Worker:
    """One worker process serving one backend, and the threads that read what it says."""

    def __init__(self, name: str, python: str, env: dict[str, str | None] | None = None) -> None:
        """`name`: a backend, or BACKEND@LABEL when `python` is another environment's interpreter; `env`:
        variables set (or, when None, removed) for it over this process's."""
        self.name, self.python = name, python
        row = RowName.parse(name)
        self.backend, self.mode = row.backend, row.mode
        self.versions: dict[str, str] = {}
        self.modes: list[str] = []  # the modes its backend has, once loaded
        self.layer_kinds: list[str] | None = None  # the layer types it builds, once loaded (None: not said)
        self.process = subprocess.Popen(
            [python, "-m", "backend_compare.comparison.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,  # Ctrl-C reaches the main process only
            env=_environment({**_this_code(python), **(env or {})}))
        self._messages: queue.Queue[tuple[dict[str, Any], protocol.Arrays] | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.problem_id: Hashable = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while True:
                self._messages.put(protocol.receive(self.process.stdout))
        except Exception:  # the stream ended or broke: the worker is gone
            self._messages.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())

    def start(self) -> str:
        """Wait for the hello and load the backend: its framework's version; WorkerFailed says why not."""
        try:
            hello, _ = self._next(START_SECONDS, "starting")
        except WorkerFailed as err:
            hint = ("; install backend-compare and the framework there" if "No module named 'backend_compare"
                    in str(err) else "")
            raise WorkerFailed(f"backend {self.name!r} could not start with {self.python}: {err}{hint}") from None
        seen = hello.get("hello", {})
        if seen.get("protocol") != protocol.PROTOCOL:
            raise WorkerFailed(f"{self.python} runs backend-compare {seen.get('package', '?')} (protocol "
                               f"{seen.get('protocol', '?')}); this is {__version__} (protocol {protocol.PROTOCOL}): "
                               "install the same version there")
        self.versions = {"python": seen["python"], "numpy": seen["numpy"]}
        reply, _ = self.request({"kind": "load", "backend": self.backend}, timeout=START_SECONDS, what="starting")
        if "unavailable" in reply:
            raise WorkerFailed(reply["unavailable"])
        self.versions[self.backend] = str(reply["loaded"])
        self.modes = list(reply["modes"])
        self.layer_kinds = list(reply["layers"]) if "layers" in reply else None
        return self.versions[self.backend]

    def cannot_build(self, spec: ModelSpec) -> str | None:
        """Why its backend cannot build `spec` (as constructing it would say), or None when it can."""
        for index, layer in enumerate(spec):
            if self.layer_kinds is not None and layer.kind not in self.layer_kinds:
                return (f"the {self.backend} backend cannot build layer {index} {layer.describe()}; it builds: "
                        f"{', '.join(self.layer_kinds) or 'no layer type'}")
        return None

    def request(self, message: dict[str, Any], arrays: protocol.Arrays | None = None, *, timeout: float | None,
                what: str = "training", on_progress: Callable[[int], object] | None = None
                ) -> tuple[dict[str, Any], protocol.Arrays]:
        self.send(message, arrays)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            reply, reply_arrays = self._next(None if deadline is None else deadline - time.monotonic(), what,
                                             timeout)
            if "progress" in reply:
                if on_progress is not None:
                    on_progress(reply["progress"])
                continue
            return reply, reply_arrays

    def send(self, message: dict[str, Any], arrays: protocol.Arrays | None = None) -> None:
        assert self.process.stdin is not None
        try:
            protocol.send(self.process.stdin, message, arrays)
        except (BrokenPipeError, OSError):
            raise WorkerFailed(self._exit_status()) from None

    def _next(self, timeout: float | None, what: str, limit: float | None = None
              ) -> tuple[dict[str, Any], protocol.Arrays]:
        try:
            item = self._messages.get(timeout=None if timeout is None else max(timeout, 0.0))
        except queue.Empty:
            self.kill()
            raise WorkerFailed(f"timed out after {limit if limit is not None else timeout:g} s") from None
        if item is None:
            raise WorkerFailed(self._exit_status())
        return item

    def _exit_status(self) -> str:
        try:
            code = self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            return f"crashed (signal {-code})"
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        return f"crashed (exit {code})" + (f": {last[:200]}" if last else "")

    def train(self, problem_id: Hashable, problem: Problem, job: dict[str, Any], timeout: float | None,
              on_progress: Callable[[int], object]) -> BackendResult:
        if self.problem_id != problem_id:  # the data cross once per seed, not per job or epoch
            message, arrays = protocol.encode_problem(problem)
            self.send({"kind": "problem", "problem": message}, arrays)
            self.problem_id = problem_id
        if self.mode:  # a row of its own mode: NAME:MODE
            job = {**job, "options": {**job["options"], "mode": self.mode}}
        reply, arrays = self.request({"kind": "train", "backend": self.backend, **job}, timeout=timeout,
                                     on_progress=on_progress)
        result = protocol.decode_result(reply["result"], arrays)
        result.backend = self.name
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"kind": "stop"})
                self.process.wait(timeout=STOP_SECONDS)
            except (WorkerFailed, subprocess.TimeoutExpired):
                self.kill()
        self._reap()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def _reap(self) -> None:
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _this_code(python: str) -> dict[str, str | None]:
    """For a worker of this interpreter, the folder this package was imported from first on its path: a
    checkout's compare.py then runs that checkout's code in its workers too, whatever is installed."""
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return {}  # another environment runs the package it has
    import backend_compare

    root = str(Path(backend_compare.__file__).resolve().parents[1])
    return {"PYTHONPATH": os.pathsep.join(part for part in (root, os.environ.get("PYTHONPATH")) if part)}


def _environment(changes: dict[str, str | None]) -> dict[str, str]:
    merged = {**os.environ, **changes, PARENT_VARIABLE: str(os.getpid())}
    return {name: value for name, value in merged.items() if value is not None}


# ---- running a comparison: every seed on every backend ----

FinishSeed = Callable[[int, Problem, list[BackendResult]], None]  # the tables of one seed, in seed order
Describe = Callable[[BaseException], str]  # what a signal did, for the row it cut short: "interrupted"


def run_inline(backends: Callable[[int, Problem], dict[str, Backend]], problems: Callable[[int], Problem],
               seeds: list[int], *, init: str, record: bool, on_epoch: Callable[[], object],
               on_start: Callable[[int, str], object], describe: Describe, finish_seed: FinishSeed
               ) -> BaseException | None:
    """One backend after another in this process. A signal ends the run: the row it cut short says so,
    and the signal is returned."""
    for seed in seeds:
        problem = problems(seed)
        results = []
        for name, backend in backends(seed, problem).items():
            on_start(seed, name)
            try:
                result = train(backend, problem, init=init, seed=seed, record=record, on_epoch=on_epoch)
                result.backend = name  # the row's name: BACKEND, or BACKEND:MODE
                results.append(result)
            except Exception as err:  # a framework failing mid-run: its row says why, the others go on
                results.append(stopped_result(name, f"failed: {error_line(err)}"))
            except BaseException as signalled:  # Ctrl-C, or SIGTERM as the program raises it
                results.append(stopped_result(name, describe(signalled)))
                finish_seed(seed, problem, results)
                return signalled
        finish_seed(seed, problem, results)
    return None


def run_in_workers(workers: list[Worker], problems: Callable[[int], Problem], seeds: list[int], *,
                   job: dict[str, Any], jobs: int, timeout: float | None, on_progress: Callable[[int], object],
                   describe: Describe, finish_seed: FinishSeed) -> BaseException | None:
    """Each backend's worker takes the seeds in order; at most `jobs` jobs run at once. A worker that
    fails becomes its row for that seed and is replaced for the next. A signal stops every worker; the
    rows it cut short say so, and the signal is returned."""
    results: dict[int, dict[str, BackendResult]] = collections.defaultdict(dict)
    cache = _Problems(problems, users=len(workers))
    running = threading.Semaphore(jobs)
    stop: list[BaseException] = []

    def lane(index: int) -> None:
        worker = workers[index]
        for seed in seeds:
            if stop:
                return
            try:
                problem = cache.get(seed)
                with running:  # at most `jobs` at once, taken job by job: every backend's seeds interleave
                    result = worker.train(seed, problem, {**job, "seed": seed}, timeout, on_progress)
            except WorkerFailed as err:
                result = stopped_result(worker.name, describe(stop[0]) if stop else str(err))
                if not stop:
                    workers[index] = worker = _restarted(worker)
            finally:
                cache.release(seed)
            results[seed][worker.name] = result

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(workers)) as pool:
        lanes = [pool.submit(lane, index) for index in range(len(workers))]
        try:
            while concurrent.futures.wait(lanes, timeout=0.1).not_done:
                pass  # a short wait at a time: the main thread must stay where a signal can reach it
        except BaseException as signalled:  # Ctrl-C or SIGTERM reached the main thread
            stop.append(signalled)
            for worker in workers:
                worker.kill()
            concurrent.futures.wait(lanes)
    for seed in seeds:
        if not results.get(seed):
            break
        finish_seed(seed, problems(seed), [results[seed].get(worker.name) or stopped_result(
            worker.name, describe(stop[0]) if stop else "not run") for worker in workers])
    return stop[0] if stop else None


def _restarted(worker: Worker) -> Worker:
    """A new worker in place of one that crashed or hung (it may fail too: then so do its next seeds)."""
    worker.kill()
    fresh = Worker(worker.name, worker.python)
    with contextlib.suppress(WorkerFailed):  # its next request fails the same way and names the reason
        fresh.start()
    return fresh


class _Problems:
    """Each seed's problem, made once for all workers and dropped when the last has taken it."""

    def __init__(self, make: Callable[[int], Problem], users: int) -> None:
        self._make, self._users = make, users
        self._lock = threading.Lock()
        self._made: dict[int, tuple[Problem, int]] = {}

    def get(self, seed: int) -> Problem:
        with self._lock:
            if seed not in self._made:
                self._made[seed] = (self._make(seed), 0)
            return self._made[seed][0]

    def release(self, seed: int) -> None:
        with self._lock:
            if seed in self._made:
                problem, done = self._made[seed]
                self._made[seed] = (problem, done + 1)
                if done + 1 == self._users:
                    del self._made[seed]
