"""Benchmark: the default LSTM of --task sequence (sunspot windows of 10, float32, SGD, batches of 16), the
suite's step against a plain hand-written loop in each framework (`lstm_loop` in benchmarks/plain/FRAMEWORK_loop.py,
as its tutorials write one: nn.LSTM, gluon.rnn.LSTM, nnx.RNN of an OptimizedLSTMCell under jax.jit, keras LSTM under
tf.function), every framework held to one thread; and the NumPy backend's hand-written backpropagation through
time against torch's plain eager loop.

    python benchmarks/sequence.py            # measures, prints, and writes its section of benchmarks/RESULTS.md
    python benchmarks/sequence.py --quick    # 2 repeats; prints, writes nothing

Suite and plain loop are interleaved repeat by repeat on the same data and batches (step_tables.interleaved), so
the ratios hold on a busy machine. The section "## The default LSTM …" of RESULTS.md is replaced whole.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plain import SEQUENCE_LR, get_plain_lstm_loop  # noqa: E402
from sections import write_section  # noqa: E402
from step_tables import interleaved  # noqa: E402

from backend_compare.backends import BACKENDS, get_backend  # noqa: E402
from backend_compare.comparison.threads import limits  # noqa: E402
from backend_compare.tasks import get_task  # noqa: E402

TARGET = 1.10  # each framework's suite step over its plain loop
NUMPY_TARGET = 5.0  # the NumPy backend's step over torch's plain eager loop
HEADING = "## The default LSTM"


def rows(repeats: int, names: list[str]) -> list[dict[str, object]]:
    problem = get_task("sequence").make_problem(dtype="float32", epochs=1)
    X, y, params = problem.X_train, problem.y_train, problem.initial_params
    batches = list(problem.epoch_batches[0])
    found = []
    torch_plain: float | None = None
    for name in names:
        model = get_backend(name)(problem.spec, dtype="float32", lr=SEQUENCE_LR)
        model.set_params(params)
        model.load(X, y)
        runs = {"suite": lambda model=model: model.train_epoch(batches)}
        if name != "numpy":
            runs["plain"] = get_plain_lstm_loop(name)(X, y, batches)
        seconds = interleaved(runs, repeats)
        per_step = {key: statistics.median(values) / len(batches) * 1e6 for key, values in seconds.items()}
        if name == "torch":
            torch_plain = per_step["plain"]
        found.append({"backend": name, "mode": model.mode, "suite_us": per_step["suite"],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats; prints, writes nothing")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args(argv)
    if os.environ.get("BENCHMARK_THREADS") != "1":  # the frameworks read their thread counts as they start
        held = {key: value for key, value in limits(1).items() if value is not None}
        os.execve(sys.executable, [sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)],
                  {**os.environ, **held, "BENCHMARK_THREADS": "1"})
    names = args.backends.split(",")
    if "numpy" in names and "torch" not in names:
        names.append("torch")  # the NumPy backend's yardstick
    found = rows(2 if args.quick else args.repeats, names)
    section = (f"{HEADING} (--task sequence: sunspot windows of 10 years, LSTM(1 → 16) and a linear layer, float32, "
               f"SGD lr {SEQUENCE_LR}, batches of 16, one thread each; medians of "
               f"{2 if args.quick else args.repeats} interleaved repeats of an epoch)\n\n"
               "The plain loops are each framework's `lstm_loop` in benchmarks/plain/, as its tutorials write one: "
               "torch's nn.LSTM eagerly, Gluon's rnn.LSTM hybridized, Flax NNX's nnx.RNN of an OptimizedLSTMCell "
               "under jax.jit (nnx.scan inside), Keras's LSTM under tf.function; the suite's step in each "
               "framework's usual mode, compile time apart.\n\n" + table(found) + "\n")
    print(section)
    if not args.quick:
        write_section(Path(args.out), HEADING, section)
    return 0 if all(float(row["ratio"]) <= float(row["target"]) for row in found) else 1  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
