"""The one job of every run and sweep: one backend (a row) trained for one seed at one point of settings,
run where the executor puts it. Every executor calls the same function with the same job, and the job builds
its data from the seed where it runs, so the numbers are the same on every executor, bit for bit. A run is a
sweep of one point: its jobs are the seeds × rows.

Off this process (local pool, Dask, Ray), a job trains in a worker process of the machine that runs it,
kept for the next job of its backend there: a job that crashes or hangs past its timeout kills only that
worker, and becomes a row with a status.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..backends import RowName, error_line
from ..tasks import Problem, get_task
from .run import BackendResult, build_backends, stopped_result, train
from .sweep import code_version, job_row
from .workers import Worker, WorkerFailed

# What decides how many threads a framework's kernels use, and so, for some sizes, the order of their sums:
# a job's worker gets the values of the process that submitted it (Ray, for one, sets OMP_NUM_THREADS=1).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_WAIT_POLICY")


@dataclass(frozen=True)
class Job:
    key: str
    settings: dict[str, Any]  # the grid point, for its row
    seed: int
    backend: str  # a row name: BACKEND[:MODE][@LABEL]
    task: str
    task_kwargs: dict[str, Any]
    setup: dict[str, Any]  # epochs and batch_size
    options: dict[str, Any]  # the backend's: dtype, optimizer, lr, ...
    python: str | None = None  # another environment's interpreter; None: the one running the job
    timeout: float | None = None
    env: dict[str, str | None] = field(default_factory=dict)
    code: str = ""  # this package's code version where the sweep was started: a node running other code refuses
    framework: str = ""  # the framework's version there ("" for another environment's row)
    init: str = "shared"  # or "native": each framework's own initialiser and loader
    record: bool = False  # keep parameter snapshots and the step clock (a run's parity-over-steps plot)
    row: RowName = field(init=False, compare=False)  # `backend`, parsed once

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", RowName.parse(self.backend))


@dataclass
class Finished:
    """What a job gives back: its backend's whole result, and the sweep's tidy row computed from it where it ran
    (against the true parameters and function, which only the job's data hold)."""

    job: Job
    result: BackendResult
    row: dict[str, Any]


Progress = Callable[[Job, int], object]  # epochs a job has just finished


def _no_progress(job: Job, epochs: int) -> None:
    pass


def thread_settings() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


_problems: collections.OrderedDict[str, Problem] = collections.OrderedDict()
_problems_lock = threading.Lock()
KEPT_PROBLEMS = 4  # a point's backends share their seed's data


def _identity(job: Job) -> str:
    return json.dumps((job.task, json.dumps(job.task_kwargs, sort_keys=True), job.setup["epochs"],
                       job.setup["batch_size"], job.seed))


def remember_problem(job: Job, problem: Problem) -> None:
    """Give the job's data made already (a run makes its first seed's while checking the options)."""
    with _problems_lock:
        _keep(_identity(job), problem)


def _keep(name: str, problem: Problem) -> None:
    _problems[name] = problem
    while len(_problems) > KEPT_PROBLEMS:
        _problems.popitem(last=False)


def problem_of(job: Job) -> tuple[str, Problem]:
    """The job's data, start and batches, and a name for them (a worker that has them is not sent them again).
    Made once for the jobs that share them, whichever thread asks first."""
    name = _identity(job)
    with _problems_lock:
        if name not in _problems:
            _keep(name, get_task(job.task).make_problem(seed=job.seed, epochs=job.setup["epochs"],
                                                        batch_size=job.setup["batch_size"], **job.task_kwargs))
        _problems.move_to_end(name)
        return name, _problems[name]


def run_job_here(job: Job, on_progress: Progress = _no_progress) -> Finished:
    """Train in this process (the inline executor): a failing framework is the row's status; a signal is raised."""
    _, problem = problem_of(job)
    try:
        backend = build_backends(problem, [job.row], job.options)[job.backend]
        result = train(backend, problem, init=job.init, seed=job.seed, record=job.record,
                       on_epoch=lambda: on_progress(job, 1))
        result.backend = job.backend
    except Exception as err:
        result = stopped_result(job.backend, f"failed: {error_line(err)}")
    return Finished(job, result, job_row(job.settings, job.seed, problem, result, job.key, job.options))


def run_job(job: Job, on_progress: Progress = _no_progress, reserved: Worker | None = None) -> Finished:
    """Train in a worker process of this machine (`reserved`, else an idle one, else a new one): what executors
    off this process call."""
    name, problem = problem_of(job)
    try:
        worker = reserved if reserved is not None else _take(job)
        try:  # a mode the backend lacks is refused by the backend itself, in the worker: a failed row
            differs = _differs(job, worker)
            if differs:
                result = stopped_result(job.backend, f"failed: {differs}")
            else:
                result = worker.train(name, problem, {"options": job.options, "init": job.init,
                                                      "record": job.record, "seed": job.seed}, job.timeout,
                                      on_progress=lambda epochs: on_progress(job, epochs))
        except BaseException:
            _drop(worker)
            raise
        _give_back(job, worker)
    except WorkerFailed as err:  # crashed, timed out, could not start: only this job's row
        result = stopped_result(job.backend, str(err))
    return Finished(job, result, job_row(job.settings, job.seed, problem, result, job.key, job.options))


def _differs(job: Job, worker: Worker) -> str:
    """What makes this machine's numbers not the ones the sweep's key promises: other code or framework."""
    here = {"backend-compare code": code_version(), worker.backend: worker.versions.get(worker.backend, "")}
    wanted = {"backend-compare code": job.code, worker.backend: job.framework}
    differing = [f"{what} {here[what]} here, {wanted[what]} where the sweep started" for what in here
                 if wanted[what] and here[what] != wanted[what]]
    return "; ".join(differing) + ": install the same versions" if differing else ""


def lost(job: Job, status: str) -> Finished:
    """What a job whose executor lost it (a node gone, a task cancelled) gives: a row with that status."""
    result = stopped_result(job.backend, status)
    return Finished(job, result, job_row(job.settings, job.seed, None, result, job.key))


# ---- this process's workers, kept between jobs ----

_lock = threading.Lock()
_idle: dict[tuple[str, str, str], list[Worker]] = {}
_busy: set[Worker] = set()
_stopping = threading.Event()  # a signal stopped the sweep: no worker is taken until close_workers
_start_seconds: dict[tuple[str, str, str], float] = {}  # the longest a worker of each kind took to start
# Linux kills a worker when the thread that started it ends (PR_SET_PDEATHSIG, see worker.py): workers are
# started from this one thread, which lives as long as the process.
_starter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="backend-compare-starter")


def identity(job: Job) -> tuple[str, str, str]:
    """What a worker must be to run the job: its backend, interpreter and environment."""
    return job.backend, job.python or "", json.dumps(job.env, sort_keys=True)


def start_seconds(kind: tuple[str, str, str]) -> float:
    """How long a worker of this kind took to start and load here (the longest seen); NaN before one has."""
    with _lock:
        return _start_seconds.get(kind, math.nan)


def _started(kind: tuple[str, str, str], worker: Worker) -> None:
    with _lock:
        if not math.isnan(worker.start_seconds):
            _start_seconds[kind] = max(_start_seconds.get(kind, 0.0), worker.start_seconds)


def reserve(kind: tuple[str, str, str]) -> Worker | None:
    """An idle worker of this kind, taken now for the job a lane is about to run (so that two lanes never count
    on one idle worker); None when none is idle."""
    with _lock:
        idle = _idle.get(kind)
        if not idle or _stopping.is_set():
            return None
        worker = idle.pop()
        _busy.add(worker)
        return worker


def _take(job: Job) -> Worker:
    with _lock:
        if _stopping.is_set():
            raise WorkerFailed("stopped before it started")
        idle = _idle.get(identity(job))
        worker = idle.pop() if idle else None
        if worker is not None:
            _busy.add(worker)
            return worker
    worker = _starter.submit(Worker, job.row, job.python or sys.executable, job.env).result()
    with _lock:  # busy, where stop_workers finds it, unless a signal came while its process was starting
        stopped = _stopping.is_set()
        if not stopped:
            _busy.add(worker)
    if stopped:
        worker.kill()
        raise WorkerFailed("stopped before it started")
    try:
        worker.start()
    except BaseException:
        _drop(worker)
        raise
    _started(identity(job), worker)
    return worker


def adopt(job: Job, worker: Worker) -> None:
    """Keep a worker started already (a run starts its rows' workers to check them) for the jobs like `job`."""
    _started(identity(job), worker)
    _give_back(job, worker)


def _give_back(job: Job, worker: Worker) -> None:
    with _lock:
        _busy.discard(worker)
        _idle.setdefault(identity(job), []).append(worker)


def _drop(worker: Worker) -> None:
    with _lock:
        _busy.discard(worker)
    worker.kill()


def stop_workers() -> None:
    """A signal stopped the sweep: kill the workers running jobs now (their jobs end as rows), and every one
    that is starting as soon as it has started, so that no job runs on to its end while the sweep waits."""
    with _lock:
        _stopping.set()
    kill_workers()


def kill_workers() -> None:
    """Kill the workers running jobs now (their jobs end as rows)."""
    with _lock:
        busy = list(_busy)
    for worker in busy:
        worker.kill()


def close_workers() -> None:
    """Stop every worker this process keeps (after a sweep; on a cluster, each node is asked to)."""
    with _lock:
        idle = [worker for workers in _idle.values() for worker in workers]
        _idle.clear()
    kill_workers()
    if idle:  # all at once: each takes a moment to leave (its framework's own clean-up)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(idle)) as closing:
            list(closing.map(Worker.close, idle))
    _stopping.clear()  # the next sweep in this process takes workers again
