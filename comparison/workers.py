"""This process's side of a worker process: one backend loaded in a Python of its own (this environment's or
another's), spoken to through `protocol`. A worker that crashes, hangs past its timeout or is killed raises
WorkerFailed, whose message becomes its job's row; a worker dies with the process that started it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import math
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
from ..backends import RowName
from ..layers import ModelSpec
from ..tasks import Problem
from . import protocol
from .run import BackendResult

PARENT_VARIABLE = "BACKEND_COMPARE_PARENT"  # the main process's pid, for the worker to die with it
START_SECONDS = 120  # for a worker to start and import its framework
STOP_SECONDS = 5  # for a worker to leave after `stop`, before it is killed


class WorkerFailed(Exception):
    """A worker that could not start, or is no longer there; the message is the row's status."""


class Worker:
    """One worker process serving one backend, and the threads that read what it says."""

    def __init__(self, row: RowName | str, python: str, env: dict[str, str | None] | None = None) -> None:
        """`row`: a backend, or BACKEND@LABEL when `python` is another environment's interpreter, with its
        :MODE; `env`: variables set (or, when None, removed) for it over this process's."""
        self.row = RowName.parse(row)
        self.name, self.python = str(self.row), python
        self.backend, self.mode = self.row.backend, self.row.mode
        self.versions: dict[str, str] = {}
        self.modes: list[str] = []  # the modes its backend has, once loaded
        self.layer_kinds: list[str] | None = None  # the layer types it builds, once loaded (None: not said)
        self.began, self.start_seconds = time.monotonic(), math.nan  # how long it took to start and load
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
        reply, _ = self.request({"kind": "load", "backend": self.backend}, timeout=START_SECONDS, what="importing")
        if "unavailable" in reply:
            raise WorkerFailed(reply["unavailable"])
        self.versions[self.backend] = str(reply["loaded"])
        self.modes = list(reply["modes"])
        self.layer_kinds = list(reply["layers"]) if "layers" in reply else None
        self.start_seconds = time.monotonic() - self.began
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
        if item is None:  # a framework that kills its process as it loads (a segfault, os._exit) says so
            raise WorkerFailed(self._exit_status(" at import" if what == "importing" else ""))
        return item

    def _exit_status(self, during: str = "") -> str:
        try:
            code = self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            return f"crashed{during} (signal {-code})"
        last = next((line for line in reversed(self._stderr) if line.strip()), "")
        return f"crashed{during} (exit {code})" + (f": {last[:200]}" if last else "")

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


# The frameworks slowest to import first (a worker alone, benchmarks/RESULTS.md's start-up table: tensorflow
# 4.0 s, mxnet 2.1, torch 1.4, jax 1.0, numpy 0.3), then any other backend's, numpy's last.
START_ORDER = ("tensorflow", "mxnet", "torch", "jax")


def start_all(rows: dict[str, str], env: dict[str, str | None] | None,
              on_failed: Callable[[Worker, WorkerFailed], None]) -> list[Worker]:
    """A worker for each row (name -> interpreter), started no more at a time than the machine has cores,
    the slowest to import first: five imports at once on 2 cores took 7.8-8.4 s until the last was loaded,
    two at a time 4.3 s. A worker that cannot load is killed and given to `on_failed` (which may raise);
    anything raised kills every worker started. Returns those that loaded, in the rows' order. Each is made
    in the calling thread (Linux kills a worker when the thread that made it ends: see worker.py)."""
    def rank(name: str) -> int:
        backend = RowName.parse(name).backend
        return START_ORDER.index(backend) if backend in START_ORDER else len(START_ORDER) + (backend == "numpy")

    waiting = collections.deque(sorted(rows, key=rank))
    slots = max(1, os.cpu_count() or 1)
    made: list[Worker] = []
    loaded: dict[str, Worker] = {}
    starting: dict[concurrent.futures.Future[str], Worker] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="backend-compare-start") as pool:
        try:
            while waiting or starting:
                while waiting and len(starting) < slots:
                    name = waiting.popleft()
                    worker = Worker(RowName.parse(name), rows[name], env)
                    made.append(worker)
                    starting[pool.submit(worker.start)] = worker
                # a short wait at a time: the main thread must stay where a signal can reach it
                done, _ = concurrent.futures.wait(starting, timeout=0.1,
                                                  return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    worker = starting.pop(future)
                    try:
                        future.result()
                        loaded[worker.name] = worker
                    except WorkerFailed as err:
                        worker.kill()
                        on_failed(worker, err)
        except BaseException:  # a usage error or a signal: no worker outlives the program
            for worker in made:
                worker.kill()
            raise
    return [loaded[name] for name in rows if name in loaded]
