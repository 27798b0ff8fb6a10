"""Each worker's framework threads: the cores shared among the workers running at once (or --threads), set
through the variables the frameworks read when they start, and said in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from backend_compare.comparison.threads import limits, share

PROBE = """
import json, threadpoolctl, torch
torch.ones(64, 64) @ torch.ones(64, 64)
print(json.dumps({"torch": torch.get_num_threads(),
                  **{pool["internal_api"]: pool["num_threads"] for pool in threadpoolctl.threadpool_info()}}))
"""


def test_the_limits_are_what_the_frameworks_read() -> None:
    for threads in sorted({1, min(2, os.cpu_count() or 1)}):  # more than the cores: the libraries cap it
        found = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                               env={**os.environ, **{k: v for k, v in limits(threads).items() if v is not None}})
        assert found.returncode == 0, found.stderr
        assert set(json.loads(found.stdout).values()) == {threads}, found.stdout  # torch, OpenMP, OpenBLAS
    flags = limits(2, {"XLA_FLAGS": "--xla_dump_to=/tmp/x"})["XLA_FLAGS"]
    assert flags == "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"
    # idle OpenMP threads sleep instead of spinning against a busy machine, unless the user chose otherwise
    assert limits(2, {})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert limits(2, {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_workers_get_their_share_and_the_report_says_so(cli) -> None:  # type: ignore[no-untyped-def]
    ran = cli("--backends", "numpy,torch", "--executor", "process", "--epochs", "1", "--format", "json")
    assert ran.code == 0, ran.err
    assert json.loads(ran.out)["options"]["threads"] == share(min(os.cpu_count() or 1, 2))
    # --jobs 1 times each backend at the thread count the default gives it, so the two timings compare
    one_at_a_time = ("--backends", "numpy,torch", "--executor", "process", "--jobs", "1", "--epochs", "1")
    alone = cli(*one_at_a_time, "--format", "json")
    assert json.loads(alone.out)["options"]["threads"] == share(min(os.cpu_count() or 1, 2)), alone.err
    text = cli(*one_at_a_time)
    assert f"one backend trained at a time, {share(min(os.cpu_count() or 1, 2))} thread" in text.out, text.err
    threads = min(2, os.cpu_count() or 1)
    chosen = cli("--backends", "numpy,torch", "--executor", "process", "--threads", str(threads), "--epochs", "1")
    assert chosen.code == 0 and f"{threads} thread{'s' if threads > 1 else ''} each" in chosen.out, chosen.err
    for absurd in ("1000000", "0", "-1"):  # a million OpenMP threads per worker would not get far
        refused = cli("--backends", "numpy", "--threads", absurd)
        assert refused.code == 2 and "--threads: expected a number of threads from 1 to" in refused.err, refused.err
    inline = cli("--backends", "numpy", "--executor", "inline", "--threads", "2")
    assert inline.code == 2 and "--threads applies only with --executor process" in inline.err
