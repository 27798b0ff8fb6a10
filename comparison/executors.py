"""Where the jobs of a run or a sweep run: `inline` (one after another in this process), `local` (a pool of
worker processes on this machine, --jobs at once; a run calls it `process`), `dask` (a distributed cluster at
--address, or a LocalCluster of --jobs workers) and `ray` (a Ray cluster at --address, or a local one of
--jobs CPUs).

Each calls `on_done` in this thread as jobs finish, in any order, and `on_progress` as they finish epochs
(inline and local; a cluster reports whole jobs). A job the executor loses (its node gone, a task failing
outside the job) is a row with that status. A signal cancels what has not run, kills what is running and is
raised again.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import logging
import math
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..backends import error_line
from ..signals import Terminated
from .jobs import (
    Finished,
    Job,
    Progress,
    close_workers,
    identity,
    lost,
    reserve,
    run_job,
    run_job_here,
    start_seconds,
    stop_workers,
)
from .workers import Worker

JOB_EXECUTORS = ("local", "inline", "dask", "ray")
WAIT_SECONDS = 0.02  # a lane with nothing worth a new worker yet looks again this much later
RUN_EXECUTORS = ("process", "inline")  # a run's names: `process` is the local pool
CONNECT_SECONDS = 30  # for a cluster at --address to answer
REACH_SECONDS = 5  # for its port to accept a connection at all
LOST_WORKER_RETRIES = 3  # times a job whose worker process died runs again (Dask's allowed-failures default)
OnDone = Callable[[Finished], None]
Execute = Callable[[list[Job], OnDone, Progress], None]


class ExecutorUnavailable(Exception):
    """The executor's package is missing or its cluster does not answer: one line, exit 2."""


@contextlib.contextmanager
def executor(kind: str, *, parallel: int, address: str | None) -> Iterator[Execute]:
    """The executor, started (a cluster connected, or a local one up): what runs a list of jobs. A cluster
    that cannot be reached raises ExecutorUnavailable before anything is run or written."""
    if kind in ("inline", "local", "process"):
        yield functools.partial(_inline if kind == "inline" else _local, parallel=parallel)
    elif kind == "dask":
        with _quiet("distributed"), _dask_client(parallel, address) as client:
            yield functools.partial(_dask, client=client)
    else:
        with _ray_session(parallel, address) as ray:
            yield functools.partial(_ray, ray=ray)


def _inline(jobs: list[Job], on_done: OnDone, on_progress: Progress, parallel: int) -> None:
    for job in jobs:
        on_done(run_job_here(job, on_progress))


def worth_another_worker(waiting: int, lanes: int, per_job: float, start: float, running: float) -> bool:
    """Whether a lane should start one more worker of a kind that has `lanes` busy with its jobs and `waiting`
    left: yes when it has none, or when a job of it has been running longer than a worker takes to start
    (`running`: the jobs behind it would wait longer than that), or when what is left, shared by the workers
    it has, takes longer than starting one and running a job on it (`per_job`, from finished jobs). A torch
    worker takes 2 s to start and a linreg job 0.05: the five jobs behind a busy one end sooner on it. NaN:
    not known yet."""
    if lanes == 0:
        return True
    if math.isnan(start):
        return False
    return running > start or (not math.isnan(per_job) and waiting * per_job / lanes > start + per_job)


def _local(jobs: list[Job], on_done: OnDone, on_progress: Progress, parallel: int) -> None:
    """`parallel` lanes, each taking next a job whose worker is idle (no import to wait for), the kind with the
    most work left first, else one of the kind with the most jobs left for which another worker pays for its
    start (worth_another_worker), else waiting for a worker to come free."""
    queues: dict[tuple[str, str, str], collections.deque[Job]] = {}
    for job in jobs:
        queues.setdefault(identity(job), collections.deque()).append(job)
    lock, stop = threading.Lock(), threading.Event()
    finished: queue.Queue[Finished] = queue.Queue()
    running: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)  # when each busy lane began
    took: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)  # each finished job's seconds

    def per_job(kind: tuple[str, str, str]) -> float:
        """The shortest finished job's seconds but the first's: a worker's first job carries its framework's
        warm-up (torch's first linreg job 0.4 s, the next 0.05)."""
        return min(took[kind][1:]) if len(took[kind]) >= 2 else math.nan

    def work_left(kind: tuple[str, str, str], waiting: int) -> float:
        """The seconds of the kind's waiting jobs, as far as its finished ones tell (inf before one has: its
        first job runs early, and tells): the most work left goes first, so that the longest backend does
        not end the run alone on one core (an MLP's six TensorFlow seeds ran last, 11 s on one lane)."""
        if not took[kind]:
            return math.inf
        return waiting * (took[kind][0] if math.isnan(per_job(kind)) else per_job(kind))

    def longest_running(kind: tuple[str, str, str]) -> float:
        return max((time.monotonic() - began for began in running[kind]), default=0.0)

    def next_job() -> tuple[Job, float, Worker | None] | None:
        """The next job, when it began and the idle worker reserved for it (None: a new one starts); None when
        there are none left. The lane waits while no job is worth a new worker yet."""
        while True:
            with lock:
                left = {kind: waiting for kind, waiting in queues.items() if waiting}
                if not left or stop.is_set():
                    return None
                chosen, worker = None, None
                for kind in sorted(left, key=lambda kind: -work_left(kind, len(left[kind]))):
                    if (worker := reserve(kind)) is not None:
                        chosen = kind
                        break
                else:
                    wanted = sorted((kind for kind in left if worth_another_worker(
                        len(left[kind]), len(running[kind]), per_job(kind), start_seconds(kind),
                        longest_running(kind))),
                        key=lambda kind: -len(left[kind]))
                    chosen = wanted[0] if wanted else None
                if chosen is not None:
                    began = time.monotonic()
                    running[chosen].append(began)
                    return left[chosen].popleft(), began, worker
            time.sleep(WAIT_SECONDS)

    def lane() -> None:
        while (taken := next_job()) is not None:
            job, began, worker = taken
            try:
                finished.put(_done(functools.partial(run_job, job, on_progress, worker), job))
            finally:
                with lock:
                    running[identity(job)].remove(began)
                    took[identity(job)].append(time.monotonic() - began)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="backend-compare-job")
    lanes = [pool.submit(lane) for _ in range(parallel)]
    try:
        done = 0
        while done < len(jobs):  # a short wait at a time: the main thread must stay where a signal can reach it
            try:
                done_job = finished.get(timeout=0.1)
            except queue.Empty:
                if all(future.done() for future in lanes) and finished.empty():
                    for future in lanes:
                        future.result()  # a lane that raised: say so
                    break
                continue
            on_done(done_job)
            done += 1
    except BaseException:
        stop.set()
        stop_workers()
        raise
    finally:
        stop.set()
        pool.shutdown(wait=True)
        close_workers()


def _done(result: Callable[[], Finished], job: Job) -> Finished:
    try:
        return result()
    except Exception as err:  # the executor lost the job: its row says how
        return lost(job, f"lost by the executor: {error_line(err)}")


def _dask(jobs: list[Job], on_done: OnDone, on_progress: Progress, client: Any) -> None:
    import distributed

    futures = {client.submit(run_job, job, key=f"backend-compare-{job.backend}-{job.key}-{uuid.uuid4().hex[:8]}",
                             pure=False, retries=0): job for job in jobs}
    try:
        for future in distributed.as_completed(futures):
            on_done(_done(future.result, futures[future]))
    except BaseException:
        client.cancel(list(futures), force=True)
        # A cancelled task's thread still waits on its training worker: stop those on every node, or the
        # cluster's close would wait for a job that may never end.
        with contextlib.suppress(Exception):
            client.run(stop_workers)
        raise


@contextlib.contextmanager
def _dask_client(parallel: int, address: str | None) -> Iterator[Any]:
    """A client of the cluster at `address`, or of a LocalCluster of `parallel` one-thread worker processes
    that ends with it. A cluster of one's own keeps running; only the workers this package started on it stop."""
    try:
        import distributed
    except ImportError as err:
        raise ExecutorUnavailable(f"--executor dask needs the distributed package ({error_line(err)}); install it "
                                  "with: pip install 'backend-compare[cluster]'") from None
    if address is not None:
        _reachable(address, "Dask scheduler")
    cluster = None
    if address is None:
        with _without_ctrl_c():  # Ctrl-C at the terminal reaches the whole process group: it is ours to handle
            # The scheduler serves HTTP (health, metrics) even without a dashboard, on port 8787 of every
            # interface unless told: another cluster there made it warn "Port 8787 is already in use" on stderr.
            # A free port of the loopback instead, and no dashboard.
            cluster = distributed.LocalCluster(n_workers=parallel, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR,
                                               scheduler_kwargs={"dashboard": False,
                                                                 "dashboard_address": "127.0.0.1:0"})
    try:
        client = distributed.Client(cluster if cluster is not None else address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as err:
        if cluster is not None:
            cluster.close()
        raise ExecutorUnavailable(f"--address {address}: no Dask scheduler answered ({error_line(err)})") from None
    try:
        yield client
    finally:
        if cluster is None:
            with contextlib.suppress(Exception):
                client.run(close_workers)
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _ray_session(parallel: int, address: str | None) -> Iterator[Any]:
    try:
        import ray
    except ImportError as err:
        raise ExecutorUnavailable(f"--executor ray needs the ray package ({error_line(err)}); install it with: "
                                  "pip install 'backend-compare[cluster]'") from None
    if address is not None and address != "auto":
        _reachable(address, "Ray cluster")
    if address is None and os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        # Ray 2.60's servers listen on every interface whatever ray.init is given (_node_ip_address="127.0.0.1"
        # included: its gcs_server, raylet and workers still bind "::"), so what keeps others out of a local
        # cluster is its token, which ray.init requires by default: not turned off here (RAY_AUTH_MODE=disabled).
        del os.environ["RAY_AUTH_MODE"]
    own_sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it with sys.exit(15)
    with _quiet("ray"):
        try:
            ray.init(address=address, num_cpus=parallel if address is None else None, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as err:
            hint = ("; a cluster with token authentication (Ray's default) also needs RAY_AUTH_MODE=token here"
                    if "RAY_AUTH_MODE" not in os.environ else "")
            raise ExecutorUnavailable(f"--address {address}: no Ray cluster answered ({error_line(err)}){hint}"
                                      ) from None
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, own_sigterm)  # a SIGTERM stops the sweep as on every executor
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray(jobs: list[Job], on_done: OnDone, on_progress: Progress, ray: Any) -> None:
    # A worker process that dies (its node lost, killed) runs its job again elsewhere, as Dask's scheduler does
    # (allowed-failures); a job that fails raises no exception here (it is a row), so nothing else is retried.
    remote = ray.remote(num_cpus=1, max_retries=LOST_WORKER_RETRIES)(run_job)
    refs = {remote.options(name=f"backend-compare-{job.backend}-{job.key}").remote(job): job for job in jobs}
    pending = list(refs)
    try:
        while pending:
            try:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.1)
            except SystemError as err:  # a signal's exception raised inside Ray's C wait comes out wrapped
                stop = err.__cause__ or err.__context__
                raise (stop if isinstance(stop, (KeyboardInterrupt, Terminated)) else err) from None
            for ref in done:
                on_done(_done(functools.partial(ray.get, ref), refs[ref]))
    except BaseException:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        raise


def _reachable(address: str, what: str) -> None:
    """A quick look before the cluster's own client, which retries an address that is not there for long."""
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS):
            pass
    except ValueError:
        raise ExecutorUnavailable(f"--address must be HOST:PORT (tcp://HOST:PORT for Dask); received: "
                                  f"{address!r}") from None
    except OSError as err:
        raise ExecutorUnavailable(f"--address {address}: no {what} answered ({err.strerror or err})") from None


@contextlib.contextmanager
def _without_ctrl_c() -> Iterator[None]:
    """Processes started meanwhile inherit SIGINT ignored (this process's own handler comes back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """The cluster's own start-up and shut-down lines stay off the terminal; its errors do not."""
    log = logging.getLogger(logger)
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(previous)
