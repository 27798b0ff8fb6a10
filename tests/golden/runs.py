"""The fixed set of runs whose numbers must not change when the code is reorganised (tests/test_golden.py).

`python -m tests.golden.runs` records them into tests/golden/runs.json; do that only on purpose, when a
change is meant to change the numbers, and say so in the commit (and record every file again, each on its CPU).
A CPU whose SIMD the BLAS and oneDNN kernels use differently rounds float32 (and float64) sums in another order:
each recording is one CPU's, bit for bit (runs.json an AVX2 machine's, runs-avx512-amx.json a Xeon's with AVX-512
and AMX, recorded from the same commit); `python -m tests.golden.runs runs-NAME.json` records another.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).with_name("runs.json")
RECORDINGS = sorted(RECORDED.parent.glob("runs*.json"))  # each CPU's
# What a run prints that depends on the machine's speed or the environment rather than on the numbers.
VOLATILE = {"compile_seconds", "seconds", "us_per_step", "steps_per_s", "versions", "machine", "parallel",
            "threads", "provenance", "environments"}
TASKS = {
    "linreg": ["--epochs", "2"],
    "mlp": ["--epochs", "2", "--n-samples", "200"],
    "celsius": ["--epochs", "3"],
    "data": ["--epochs", "2"],
    "softmax": ["--dataset", "iris", "--epochs", "3"],
    "classifier": ["--dataset", "iris", "--epochs", "3"],
}
# Each of these also runs in worker processes, with the backends named: their numbers must be those the inline
# run recorded. Every framework runs in a worker in one of them; a worker's start is mostly its framework's
# import, so TensorFlow, by far the slowest to import, starts in one run only (natively initialised, in float32:
# its own initialiser seeded in a fresh process), and the cheap ones in the float64 run with shared starting
# values. JAX, cheap to start, runs in both.
IN_WORKERS = {"linreg float64 shared": ("numpy", "torch", "mxnet", "jax"),
              "classifier float32 native": ("jax", "tensorflow")}


def data_file(folder: Path) -> Path:
    """A small CSV for --task data, the same bytes every time."""
    path = folder / "golden_data.csv"
    rows = ["x1,x2,y"] + [f"{i / 10:.1f},{(i * 7 % 13) / 4:.2f},{0.5 * i / 10 - (i * 7 % 13) / 8 + 1:.4f}"
                          for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    return path


def argv(key: str, folder: Path) -> list[str]:
    task, dtype, init = key.split()
    extra = ["--data", str(data_file(folder))] if task == "data" else []
    return ["--task", task, *TASKS[task], *extra, "--dtype", dtype, "--init", init, "--format", "json"]


def keys() -> list[str]:
    return [f"{task} {dtype} {init}" for task in TASKS for dtype in ("float32", "float64")
            for init in ("shared", "native")]


def stable(value: Any) -> Any:
    """The report without what depends on the machine's speed or environment."""
    if isinstance(value, dict):
        found = {key: stable(item) for key, item in value.items() if key not in VOLATILE}
        if isinstance(found.get("data"), str):  # the data file's temporary folder
            found["data"] = Path(found["data"]).name
        return found
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def run(main: Any, arguments: list[str]) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(arguments, prog="compare.py")
    if code != 0:
        raise RuntimeError(f"compare.py {' '.join(arguments)} exited {code}: {err.getvalue()}")
    return stable(json.loads(out.getvalue()))


def only(report: dict[str, Any], backends: tuple[str, ...]) -> dict[str, Any]:
    """The report as a run of only `backends` prints it: their rows (and the reference's), the pairs among them."""
    kept = {*backends, report["reference"]}

    def wanted(row: Any) -> bool:
        if not isinstance(row, dict):
            return True
        if "backend_a" in row:
            return row["backend_a"] in kept and row["backend_b"] in kept
        return "backend" not in row or row["backend"] in kept

    return {key: [row for row in value if wanted(row)] if isinstance(value, list) else value
            for key, value in report.items() if key != "parity_verdict"}  # it counts the pairs of all of them


def record(folder: Path) -> dict[str, Any]:
    from backend_compare.cli import main

    return {key: run(main, ["--executor", "inline", *argv(key, folder)]) for key in keys()}


if __name__ == "__main__":
    import tempfile

    target = RECORDED.with_name(sys.argv[1]) if len(sys.argv) > 1 else RECORDED
    with tempfile.TemporaryDirectory() as tmp:
        target.write_text(json.dumps(record(Path(tmp)), indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"recorded {target}\n")
