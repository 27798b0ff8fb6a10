"""The suite's training step against a plain hand-written loop in each framework, for one task's default model
(benchmarks/cnn.py, benchmarks/sequence.py): every framework held to one thread, suite and plain loop interleaved
repeat by repeat on the same data and batches (step_tables.interleaved), so the ratios hold on a busy machine; the
NumPy backend held to torch's plain eager loop. Each script's section of RESULTS.md is replaced whole.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sections import write_section
from step_tables import interleaved

from backend_compare.backends import BACKENDS, get_backend
from backend_compare.comparison.threads import limits
from backend_compare.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.10  # each framework's suite step over its plain loop
NUMPY_TARGET = 5.0  # the NumPy backend's step over torch's plain eager loop


@dataclass(frozen=True)
class Model:
    """A task's default model, the options its backends train with, and each framework's plain loop of it:
    plain(name, X, y, initial parameters, batches) gives the epoch to time."""

    task: str
    heading: str  # the RESULTS.md section's heading, "## …"
    setting: str  # what the heading's parentheses say of the run, before the repeats
    about: str  # the section's paragraph on the plain loops
    plain: Callable[[str, np.ndarray, np.ndarray, dict[str, np.ndarray], list[np.ndarray]], Callable[[], None]]
    options: dict[str, Any] = field(default_factory=dict)


def rows(model: Model, repeats: int, names: list[str]) -> list[dict[str, object]]:
    problem = get_task(model.task).make_problem(dtype="float32", epochs=1)
    X, y, params = problem.X_train, problem.y_train, problem.initial_params
    batches = list(problem.epoch_batches[0])
    found = []
    torch_plain: float | None = None
    for name in names:
        backend = get_backend(name)(problem.spec, dtype="float32", **model.options)
        backend.set_params(params)
        backend.load(X, y)
        runs = {"suite": lambda backend=backend: backend.train_epoch(batches)}
        if name != "numpy":
            runs["plain"] = model.plain(name, X, y, params, batches)
        seconds = interleaved(runs, repeats)
        per_step = {key: statistics.median(values) / len(batches) * 1e6 for key, values in seconds.items()}
        if name == "torch":
            torch_plain = per_step["plain"]
        found.append({"backend": name, "mode": backend.mode, "suite_us": per_step["suite"],
                      "plain_us": per_step.get("plain", float("nan"))})
    for row in found:
        if row["backend"] == "numpy":
            row["plain_us"] = torch_plain if torch_plain is not None else float("nan")
            row["yardstick"] = "torch's plain eager loop"
            row["target"] = NUMPY_TARGET
        else:
            row["yardstick"] = "its plain loop"
            row["target"] = TARGET
        row["ratio"] = float(row["suite_us"]) / float(row["plain_us"])  # type: ignore[arg-type]
    return found


def table(found: list[dict[str, object]]) -> str:
    lines = ["| backend | mode | suite µs/step | yardstick | yardstick µs/step | ratio | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for row in found:
        ratio, target = float(row["ratio"]), float(row["target"])  # type: ignore[arg-type]
        lines.append(f"| {row['backend']} | {row['mode']} | {float(row['suite_us']):.0f} | {row['yardstick']} | "  # type: ignore[arg-type]
                     f"{float(row['plain_us']):.0f} | {ratio:.2f}× | ≤ {target:.2f}× | "  # type: ignore[arg-type]
                     f"{'yes' if ratio <= target else 'no'} |")
    return "\n".join(lines)


def main(model: Model, script: str, doc: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats; prints, writes nothing")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args(argv)
    if os.environ.get("BENCHMARK_THREADS") != "1":  # the frameworks read their thread counts as they start
        held = {key: value for key, value in limits(1).items() if value is not None}
        os.execve(sys.executable, [sys.executable, script, *(sys.argv[1:] if argv is None else argv)],
                  {**os.environ, **held, "BENCHMARK_THREADS": "1"})
    names = args.backends.split(",")
    if "numpy" in names and "torch" not in names:
        names.append("torch")  # the NumPy backend's yardstick
    repeats = 2 if args.quick else args.repeats
    found = rows(model, repeats, names)
    section = (f"{model.heading} ({model.setting}, one thread each; medians of {repeats} interleaved repeats of an "
               f"epoch)\n\n{model.about}\n\n" + table(found) + "\n")
    print(section)
    if not args.quick:
        write_section(Path(args.out), model.heading, section)
    return 0 if all(float(row["ratio"]) <= float(row["target"]) for row in found) else 1  # type: ignore[arg-type]
