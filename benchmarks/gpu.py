"""GPUs: torch, JAX and TensorFlow in float32 on the GPU, with TF32 on and off, against the float64 reference on the
CPU (NumPy by hand from the same start and batches), and the suite's step on the GPU against the same on the CPU.

    python benchmarks/gpu.py            # measures and writes its section of benchmarks/RESULTS.md
    python benchmarks/gpu.py --quick    # one repeat, short runs; prints, writes nothing

Where no framework can run on a GPU (a CPU build, or no device), the section says so, naming what is missing for
each, and is marked not yet measured. Steps are timed as compare.py times them: each chunk of steps ends when its
losses are read back to the host, which waits for the device; compiling is the first step at each batch size,
apart. TF32 is switched with each framework's own setting: torch.backends.cuda.matmul.allow_tf32 and
torch.backends.cudnn.allow_tf32, jax_default_matmul_precision ("tensorfloat32" or "highest"), and
tf.config.experimental.enable_tensor_float_32_execution.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# Three frameworks share one GPU here: JAX must not take 75 % of its memory up front, TensorFlow all of it.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import markdown  # noqa: E402
from sections import write_section  # noqa: E402

from backend_compare.backends import get_backend, registration  # noqa: E402
from backend_compare.backends.devices import resolve  # noqa: E402
from backend_compare.cli.plan import prepare  # noqa: E402
from backend_compare.comparison.report import machine, versions  # noqa: E402
from backend_compare.comparison.run import train  # noqa: E402
from backend_compare.comparison.verdicts import tolerance_ratio  # noqa: E402

HEADING = "## GPUs"
FRAMEWORKS = ("torch", "jax", "tensorflow")
TASKS = {"linreg": [], "mlp": ["--epochs", "20"], "cnn": ["--epochs", "2"]}
RELATIVE = {"rtol": 1.0, "atol": 0.0}


def set_tf32(framework: str, on: bool) -> None:
    """TF32 for float32 matrix products and convolutions, with the framework's own switch."""
    if framework == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on
    elif framework == "jax":
        import jax
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if on else "highest")
    else:
        import tensorflow as tf
        tf.config.experimental.enable_tensor_float_32_execution(on)


def measured(framework: str, task: str, extra: list[str], repeats: int, gpu: str = "cuda") -> dict[str, Any]:
    """Parity of the GPU's float32 run (TF32 on and off) with the CPU's float64 reference, and µs per step on the
    GPU (`gpu`: the device measured as the GPU; tests give "cpu", where TF32 changes nothing)."""
    argv = ["--task", task, *extra, "--executor", "inline", "--backends", f"numpy,{framework}"]
    reference_plan = prepare([*argv, "--dtype", "float64"], runners=False)
    problem = reference_plan.problems(0)
    reference = train(get_backend("numpy")(problem.spec, **reference_plan.options), problem)
    plan = prepare(argv, runners=False)
    row: dict[str, Any] = {"task": task, "backend": framework}
    for tf32 in (True, False):
        set_tf32(framework, tf32)
        result = train(get_backend(framework)(problem.spec, **{**plan.options, "device": gpu}), problem)
        row[f"vs float64, TF32 {'on' if tf32 else 'off'}"] = tolerance_ratio(result, reference, RELATIVE)
    set_tf32(framework, False)
    row["µs/step"] = steady_us(framework, problem, plan.options, gpu, repeats)
    return row


def steady_us(framework: str, problem: Any, options: dict[str, Any], device: str, repeats: int) -> float:
    """The median µs per steady step of the suite's backend on `device`."""
    times = [train(get_backend(framework)(problem.spec, **{**options, "device": device}), problem)
             for _ in range(repeats)]
    return statistics.median(1e6 * r.seconds / max(r.steady_steps, 1) for r in times)


def in_process(framework: str, task: str, repeats: int, device: str) -> dict[str, Any]:
    """One measurement in a process of its own: the frameworks' device choices are process-wide (TensorFlow cannot
    hide a GPU it has started; JAX's default device is global), and two of them share a GPU's memory badly."""
    done = subprocess.run([sys.executable, __file__, "--one", framework, task, str(repeats), device],
                          capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} {task} on {device}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one(framework: str, task: str, repeats: int, device: str) -> dict[str, Any]:
    if device == "cuda":
        return measured(framework, task, TASKS[task], repeats)
    argv = ["--task", task, *TASKS[task], "--executor", "inline", "--backends", framework]
    plan = prepare(argv, runners=False)
    return {"µs/step": steady_us(framework, plan.problems(0), plan.options, "cpu", repeats)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat; prints, writes nothing")
    parser.add_argument("--one", nargs=4, metavar=("FRAMEWORK", "TASK", "REPEATS", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # a measurement in this process alone, printed as JSON (in_process)
        framework, task, repeats, device = args.one
        print(json.dumps(one(framework, task, int(repeats), device)))
        return 0
    found = {name: resolve(registration(name).framework or name, "cuda") for name in FRAMEWORKS}
    usable = [name for name, (device, _) in found.items() if device == "cuda"]
    stamp = f"{datetime.date.today()} · {machine()} · " + " · ".join(f"{k} {v}" for k, v in versions().items())
    if not usable:
        why = "\n".join(f"- {name}: {reason}" for name, (_, reason) in found.items())
        section = (f"{HEADING} (not yet measured)\n\n{stamp}\n\nNo framework here can run on a GPU:\n\n{why}\n\n"
                   "Run `python benchmarks/gpu.py` on a machine with one (after `pip install -e '.[gpu]'`).\n")
    else:
        repeats, rows = 1 if args.quick else 5, []
        for task, name in itertools.product(TASKS, usable):
            row = in_process(name, task, repeats, "cuda")
            row["GPU µs/step"] = row.pop("µs/step")
            row["CPU µs/step"] = in_process(name, task, repeats, "cpu")["µs/step"]
            rows.append({**row, "GPU speed-up": row["CPU µs/step"] / row["GPU µs/step"]})
        section = (f"{HEADING}: float32 on the GPU, TF32 on and off, against the CPU's float64 reference; the step "
                   f"on the GPU against the CPU\n\n{stamp}\n\n{markdown(rows)}\n")
    print(section)
    if not args.quick:
        write_section(ROOT / "benchmarks" / "RESULTS.md", HEADING, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
