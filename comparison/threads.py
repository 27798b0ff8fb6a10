"""How many threads each framework's kernels use in a worker. Every framework starts as many as the machine
has cores; two workers on two cores then oversubscribe them (torch 15x slower per step, measured), and the
timings measure the contention, not the framework. A worker gets its share of the cores instead, through the
variables each framework reads when it starts."""

from __future__ import annotations

import os
from collections.abc import Mapping


def share(parallel: int) -> int:
    """The threads of each of `parallel` workers running at once: the cores shared among them (at least 1)."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel))


def limits(threads: int, inherited: Mapping[str, str] | None = None) -> dict[str, str | None]:
    """The variables that hold every framework to `threads`: OpenMP (torch, MXNet's operators, NumPy's BLAS),
    MKL and OpenBLAS, MXNet's engine, TensorFlow's two pools and XLA's CPU client (JAX) — XLA's flags appended
    to the ones given."""
    n = str(threads)
    env = inherited if inherited is not None else os.environ
    given = env.get("XLA_FLAGS", "")
    xla = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={n}"
    # OpenMP's idle threads spin by default: on a busy machine a spinning thread waits for one the scheduler put
    # aside, and a tiny model's step took 1 500-16 000 us on 2 threads against 370-430 with PASSIVE (torch,
    # breast_cancer classifier, load 2-3 on 2 cores). A trade: idle, torch's 2-thread step is slower passive
    # (722-979 us against 271-335) and MXNet's faster (501-546 against 1 522-1 611). A policy of the user's is kept.
    wait = env.get("OMP_WAIT_POLICY") or "PASSIVE"
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MXNET_CPU_WORKER_NTHREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n, "XLA_FLAGS": f"{given} {xla}".strip(),
            "OMP_WAIT_POLICY": wait}
