"""The tables measured in fresh processes: peak memory against the suite's estimate, workers against inline,
a worker's start-up, and the wall time of compare.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


MEMORY_PROBE = """
import json, sys
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark that fork and exec carried over
def high_water_mb():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024
sys.path.insert(0, {root!r})
import numpy as np
from backend_compare.backends import get_backend
from backend_compare.comparison.run import train
from backend_compare.tasks import get_task
name = {name!r}
get_backend(name)(get_task("linreg").make_problem(epochs=1, n_samples=100, true_w=[0.0]).spec)  # import + build
baseline = high_water_mb()
problem = get_task("linreg").make_problem(seed=0, true_w=np.linspace(-1, 1, {features}), n_samples={n_samples},
                                          batch_size=None, epochs=2, dtype="float32")
result = train(get_backend(name)(problem.spec, dtype="float32", lr=0.01), problem)
peak = high_water_mb()
print(json.dumps({{"baseline_mb": baseline, "peak_mb": peak, "status": result.status}}))
"""


def memory_rows(n_train: int, features: int, names: list[str]) -> list[dict[str, Any]]:
    dataset_mb = n_train * (features + 1) * 4 / 2**20  # float32 X and y of the training split
    rows = []
    for name in names:
        code = MEMORY_PROBE.format(root=str(ROOT), name=name, features=features, n_samples=int(n_train / 0.8))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        measured = json.loads(out.strip().splitlines()[-1])
        growth = measured["peak_mb"] - measured["baseline_mb"]
        rows.append({"backend": name, "baseline_mb": measured["baseline_mb"], "peak_mb": measured["peak_mb"],
                     "growth_mb": growth, "dataset_mb": dataset_mb, "growth_over_dataset": growth / dataset_mb})
    return rows


MEMORY_CASES = {  # name -> compare.py arguments; each is measured with numpy, torch and mxnet in turn
    "linreg 1e5 rows, full batch, 2000 epochs": ["--n-samples", "125000", "--batch-size", "100000",
                                                 "--epochs", "2000"],
    "linreg 1e6 rows, batches of 1000, --out": ["--n-samples", "1000000", "--batch-size", "1000", "--epochs", "1",
                                                "--out", "{tmp}/run"],
    "mlp 1e5 rows, hidden 64, huber, adam": ["--task", "mlp", "--n-samples", "100000", "--hidden", "64", "--lr",
                                             "0.01", "--batch-size", "1000", "--epochs", "1", "--loss", "huber",
                                             "--optimizer", "adam"],
}
TINY = ["--n-samples", "1000", "--epochs", "1"]  # the same command at a negligible size: its fixed cost


def memory_probe(args: list[str]) -> dict[str, Any]:
    """One run of compare.py in a fresh process: measured peak growth and the suite's estimate (MB)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        argv = [arg.format(tmp=tmp) for arg in args]
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_probe.py"), *argv],
                             capture_output=True, text=True, check=True).stdout
    measured: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return measured


def memory_estimate_rows(names: list[str]) -> list[dict[str, Any]]:
    """Per case and backend: the growth of peak memory over the warm import baseline, the same command's
    growth at 1000 rows (its fixed cost), the data, and the estimate made before the run."""
    rows = []
    for case, args in MEMORY_CASES.items():
        n_samples = int(args[args.index("--n-samples") + 1])
        features = 2 if "mlp" not in case else 1
        data_mb = n_samples * (features + 1) * 4 / 2**20  # float32 X and y
        for name in names:
            run = memory_probe(["--backends", name, *args])
            tiny = memory_probe(["--backends", name, *args[: args.index("--n-samples")], *TINY])
            rows.append({"case": case, "backend": name, "data_mb": data_mb, "growth_mb": run["growth_mb"],
                         "fixed_mb": tiny["growth_mb"], "over_fixed_per_data": (run["growth_mb"] - tiny["growth_mb"])
                         / data_mb, "estimate_mb": run["estimate_mb"],
                         "estimate_over_growth": run["estimate_mb"] / run["growth_mb"],
                         "imports_mb": run["imports_mb"], "import_estimate_mb": run["import_estimate_mb"]})
    return rows


def compare_seconds(args: list[str], cwd: Path = ROOT) -> float:
    """Wall time of one `python compare.py ARGS` in a fresh process, imports included."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "compare.py", *args], cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - began


def compare_steps(args: list[str], cwd: Path = ROOT) -> tuple[float, dict[str, float]]:
    """One `python compare.py ARGS --quiet --format json`: its wall time and each backend's µs per steady step."""
    wall, summary = compare_summary(args, cwd)
    return wall, {row["backend"]: row["us_per_step"] for row in summary}


def compare_summary(args: list[str], cwd: Path = ROOT) -> tuple[float, list[dict[str, Any]]]:
    """One `python compare.py ARGS --quiet --format json`: its wall time and its summary rows."""
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "compare.py", *args, "--quiet", "--format", "json"], cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - began, json.loads(out)["summary"]


SEEDS = 6  # the worker runs' seeds


def worker_rows(repeats: int, names: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Wall time of `--seeds 6` with workers against inline, alternated run by run; µs per step inside a
    worker against inline (from the same runs); how long a worker takes to start and load; and the shortest
    the workers' run could take: the main process's own time (numpy's inline run less its training), then
    the longer of the slowest backend's path (its worker's start-up and its seeds' training one after
    another, measured with --jobs 1) and every path's sum shared by the cores."""
    from backend_compare.comparison.workers import Worker

    starts: list[dict[str, Any]] = []
    for name in names:
        seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            worker = Worker(name, sys.executable)
            worker.start()
            seconds.append(time.perf_counter() - began)
            worker.close()
        starts.append({"backend": name, "start_and_load_s": float(np.median(seconds))})
    started = {row["backend"]: row["start_and_load_s"] for row in starts}
    cores = os.cpu_count() or 1
    runs = []
    for task in ("linreg", "mlp"):
        # "alone": one job at a time, so a worker's steps are timed without another worker on the cores
        settings = {"process": ["--executor", "process"], "alone": ["--executor", "process", "--jobs", "1"],
                    "inline": ["--executor", "inline"]}
        walls: dict[str, list[float]] = {key: [] for key in settings}
        steps: dict[str, dict[str, list[float]]] = {key: {} for key in settings}
        training: dict[str, list[float]] = {}
        numpy_alone: list[float] = []
        for _ in range(repeats):
            for key, extra in settings.items():
                wall, summary = compare_summary(["--task", task, "--seeds", str(SEEDS), "--backends", ",".join(names),
                                                 *extra])
                walls[key].append(wall)
                for row in summary:
                    steps[key].setdefault(row["backend"], []).append(row["us_per_step"])
                    if key == "alone":  # its seeds one after another: timed steps and each compile step
                        training.setdefault(row["backend"], []).append(
                            SEEDS * (row["seconds"] + row["compile_seconds"]))
            wall, summary = compare_summary(["--task", task, "--seeds", str(SEEDS), "--backends", "numpy",
                                             "--executor", "inline"])
            numpy_alone.append(wall - SEEDS * (summary[0]["seconds"] + summary[0]["compile_seconds"]))
        paths = {name: started[name] + float(np.median(training[name])) for name in names}
        slowest = max(paths, key=lambda name: paths[name])
        main_s = float(np.median(numpy_alone))
        bound = main_s + max(paths[slowest], sum(paths.values()) / cores)
        inline = float(np.median(walls["inline"]))
        runs.append({"task": f"{task} --seeds {SEEDS}", "inline_s": inline,
                     "workers_s": float(np.median(walls["process"])),
                     "ratio": float(np.median(walls["process"]) / inline),
                     "main_s": main_s, "slowest_path": f"{slowest} {paths[slowest]:.1f} s",
                     "paths_over_cores_s": sum(paths.values()) / cores, "bound_s": bound,
                     "bound_ratio": bound / inline,
                     **{f"{name}_step_ratio": float(np.median(steps["alone"][name]) / np.median(steps["inline"][name]))
                        for name in names}})
    return runs, starts


def compare_wall_seconds(repeats: int) -> list[float]:
    return [compare_seconds(["--task", "linreg"]) for _ in range(repeats)]


def thread_rows(repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """The smallest step table (linreg n=1000, batch 10, and the MLP) in fresh processes held to 1 thread and to
    every core (comparison/threads.py's variables, as a worker gets them): the suite against its plain loop at
    the same thread count, both ways."""
    rows = []
    for threads in sorted({1, os.cpu_count() or 1}):
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json",
                              "--threads", str(threads), "--repeats", str(repeats), "--backends", ",".join(names)],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        rows += [{"threads": threads, **row} for row in json.loads(out.strip().splitlines()[-1])]
    return rows


TASK_STEPS = {  # the runs whose per-step times the issue compares with one worker at a time and with the default
    "linreg (default)": ["--task", "linreg"],
    "classifier breast_cancer": ["--task", "classifier", "--dataset", "breast_cancer"],
}


def task_step_rows(repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """µs per step of each backend in the default run (workers side by side, a share of the cores each) and
    with --jobs 1 (one worker at a time, at the same threads), alternated run by run: the two should agree
    within noise."""
    rows = []
    for case, args in TASK_STEPS.items():
        steps: dict[str, dict[str, list[float]]] = {"default": {}, "jobs_1": {}}
        for _ in range(repeats):
            for key, extra in (("default", []), ("jobs_1", ["--jobs", "1"])):
                for backend, us in compare_steps([*args, "--backends", ",".join(names), *extra])[1].items():
                    steps[key].setdefault(backend, []).append(us)
        for name in names:
            default, alone = np.median(steps["default"][name]), np.median(steps["jobs_1"][name])
            rows.append({"case": case, "backend": name, "default_us": float(default), "jobs_1_us": float(alone),
                         "ratio": float(default / alone),
                         "default_spread": f"{min(steps['default'][name]):.0f}–{max(steps['default'][name]):.0f}",
                         "jobs_1_spread": f"{min(steps['jobs_1'][name]):.0f}–{max(steps['jobs_1'][name]):.0f}"})
    return rows


def alone_wall_seconds(repeats: int, names: list[str]) -> dict[str, float]:
    """Median wall time of `compare.py --task linreg --backends NAME` for each framework alone."""
    return {name: float(np.median([compare_seconds(["--task", "linreg", "--backends", name])
                                   for _ in range(repeats)])) for name in names}
