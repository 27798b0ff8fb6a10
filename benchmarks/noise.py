"""Noise: how far apart runs of correct code can be, measured, so the parity tolerances can be set against it.

    python benchmarks/noise.py            # every backend; writes benchmarks/NOISE.md (a few minutes)
    python benchmarks/noise.py --quick    # numpy and torch, short runs; prints, writes nothing

For every backend, on linreg, the MLP and the iris classifier with SGD and Adam, from the same start and
batches: two runs of the same settings (bitwise equal?), eager against compiled in float32 and float64, and
the float32 run against its float64 shadow (comparison.noise: the same trajectory, the float32 rounding
alone). Then a long float32 MLP run against its shadow and a float64 run against its one-ulp twin, with the
difference at each snapshot and its fitted growth per step. Every difference is given as a fraction of the
dtype's tolerance (the verdicts' scale: atol + rtol × the largest value compared; 1 = at the limit).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import markdown  # noqa: E402

from backend_compare.backends import BACKENDS  # noqa: E402
from backend_compare.backends.tolerances import TOLERANCES, allowed_tolerance, applicable  # noqa: E402
from backend_compare.comparison.noise import growth, largest_jump, relative_difference, shadowed, twinned  # noqa: E402
from backend_compare.comparison.report import machine, versions  # noqa: E402
from backend_compare.comparison.run import BackendResult, train  # noqa: E402
from backend_compare.comparison.saved import write_atomic  # noqa: E402
from backend_compare.comparison.verdicts import NOISE_MARGIN, tolerance_ratio  # noqa: E402
from backend_compare.tasks import get_task  # noqa: E402

# Short runs (JAX op by op takes some 20 ms a step), each task at its own default learning rate and loss.
PROBLEMS = {"linreg": {"epochs": 2, "batch_size": 10, "n_samples": 200},
            "mlp": {"epochs": 5, "batch_size": 16, "n_samples": 100},
            "classifier": {"epochs": 3, "batch_size": 16, "dataset": "iris"}}
OPTIMIZERS = ("sgd", "adam")
LONG_EPOCHS = 400  # the MLP at its defaults (205 training rows, batches of 16): 5200 steps
STEPS_SHOWN = (100, 1000, 5200)


def options(task: str, optimizer: str, dtype: str, mode: str = "usual") -> dict[str, Any]:
    found = get_task(task)
    return {"dtype": dtype, "optimizer": optimizer, "lr": found.defaults[found.default_model]["lr"],
            "loss": found.losses[0], "mode": mode}


def problem(task: str, epochs: int | None = None) -> Any:
    settings = {**PROBLEMS[task], **({"epochs": epochs, "n_samples": 256} if epochs else {})}
    return get_task(task).make_problem(seed=0, **settings)


def trained(name: str, task: str, optimizer: str, dtype: str, mode: str = "usual") -> BackendResult:
    from backend_compare.backends import get_backend
    made = problem(task)
    return train(get_backend(name)(made.spec, **options(task, optimizer, dtype, mode)), made)


def identical(a: BackendResult, b: BackendResult) -> bool:
    return (np.array_equal(a.step_losses, b.step_losses)
            and all(np.array_equal(a.params[key], b.params[key]) for key in a.params))


def of_tolerance(a: BackendResult, b: BackendResult, dtype: str) -> float:
    return tolerance_ratio(a, b, TOLERANCES[dtype])


def short_rows(names: list[str]) -> list[dict[str, Any]]:
    """Per backend, task and optimiser: reruns, eager against compiled, float32 against its float64 shadow."""
    rows = []
    for name in names:
        for task in PROBLEMS:
            for optimizer in OPTIMIZERS:
                first, again = (trained(name, task, optimizer, "float32") for _ in range(2))
                modes = {dtype: of_tolerance(*(trained(name, task, optimizer, dtype, mode)
                                               for mode in ("eager", "compiled")), dtype)
                         for dtype in ("float32", "float64")}
                float32, shadow = shadowed(name, problem(task), options(task, optimizer, "float32"))
                rows.append({"backend": name, "task": task, "optimizer": optimizer, "steps": first.steps,
                             "rerun": "bitwise" if identical(first, again) else
                             f"{of_tolerance(first, again, 'float32'):.2g}",
                             "eager-compiled f32": modes["float32"], "eager-compiled f64": modes["float64"],
                             "f32 vs f64 shadow": of_tolerance(float32, shadow, "float32"),
                             "f32 vs shadow, relative": relative_difference(float32.params, shadow.params)})
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


def worst_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The largest noise of a correct pair per kind and task, and how many times it the tolerance is; the
    float32 shadows of the runs a named allowance concerns (a rounding the framework makes on purpose, that
    takes its float32 run off the exact trajectory) apart."""
    kinds = {"eager–compiled, float32": "eager-compiled f32", "eager–compiled, float64": "eager-compiled f64",
             "float32 against its float64 shadow": "f32 vs f64 shadow"}
    found = []
    for kind, column in kinds.items():
        for task in PROBLEMS:
            for allowed in (False, True):
                among = [row for row in rows if row["task"] == task and allowed == bool(
                    column == "f32 vs f64 shadow" and applicable("float32", [row["backend"]], row["optimizer"]))]
                if not among:
                    continue
                worst = max(among, key=lambda row: row[column])
                found.append({"noise": kind + (", under an allowance" if allowed else ""), "task": task,
                              "largest, of tolerance": worst[column],
                              "where": f"{worst['backend']} {worst['optimizer']}",
                              "tolerance / noise": 1 / worst[column] if worst[column] else float("inf")})
    return found


def long_rows(names: list[str], epochs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A long MLP run per backend and optimiser: float32 against its shadow, float64 against its twin, the
    relative difference at each snapshot (and the fitted growth), the ratio to the tolerance at the end."""
    made = problem("mlp", epochs)
    curves, fits, pairs, noise = [], [], [], {}
    for name in names:
        for optimizer in OPTIMIZERS:
            for dtype, pair in (("float32", shadowed), ("float64", twinned)):
                a, b = pair(name, made, options("mlp", optimizer, dtype), record=True)
                steps = [step for step, _ in a.checkpoints]
                differences = [relative_difference(pa, pb) for (_, pa), (_, pb) in
                               zip(a.checkpoints, b.checkpoints, strict=True)]
                curves += [{"backend": name, "optimizer": optimizer, "dtype": dtype, "step": s, "relative": d}
                           for s, d in zip(steps, differences, strict=True)]
                shown = {f"relative at {s}": differences[int(np.argmin([abs(t - s) for t in steps]))]
                         for s in STEPS_SHOWN}
                fits.append({"backend": name, "optimizer": optimizer, "run": "vs float64 shadow" if dtype == "float32"
                             else "float64 vs 1-ulp twin", **shown,
                             "first beyond tol (step)": next((s for s, d in zip(steps, differences, strict=True)
                                                              if d > TOLERANCES[dtype]["rtol"]), "-"),
                             **growth(steps, differences), "largest jump": "×{:.2g}, steps {}–{}".format(
                                 *largest_jump(steps, differences)), "end, of tolerance": of_tolerance(a, b, dtype)})
                print(fits[-1], file=sys.stderr, flush=True)
                if name == names[0]:
                    noise[optimizer, dtype] = a, (a, b)
                else:  # the pair with the first backend, against the first backend's own rounding noise
                    first, floor_run = noise[optimizer, dtype]
                    allowed = applicable(dtype, [names[0], name], optimizer)  # held as a verdict holds the pair
                    tolerance = allowed_tolerance(dtype, [names[0], name], allowed)
                    ratio, floor = tolerance_ratio(first, a, tolerance), tolerance_ratio(*floor_run, tolerance)
                    pairs.append({"pair": f"{names[0]}–{name}", "optimizer": optimizer,
                                  "tolerance": " + ".join([dtype, *allowed]), "pair, of tolerance": ratio,
                                  f"{names[0]}'s noise, of tolerance": floor, "pair / noise": ratio / floor})
    return curves, fits, pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="numpy and torch, 40 epochs; nothing written")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "NOISE.md"))
    args = parser.parse_args(argv)
    names = ["numpy", "torch"] if args.quick else args.backends.split(",")
    started, load = time.perf_counter(), os.getloadavg()
    rows = short_rows(names)
    curves, fits, pairs = long_rows(names, 40 if args.quick else LONG_EPOCHS)
    numbers = {"f32 vs f64 shadow": "{:.2g}", "f32 vs shadow, relative": "{:.2g}", "eager-compiled f32": "{:.2g}",
               "eager-compiled f64": "{:.2g}", "largest, of tolerance": "{:.2g}", "tolerance / noise": "{:.3g}",
               "power": "{:.2f}", "per_1000_steps": "{:.3g}", "end, of tolerance": "{:.3g}",
               "pair, of tolerance": "{:.3g}", f"{names[0]}'s noise, of tolerance": "{:.3g}", "pair / noise": "{:.2g}",
               **{f"relative at {s}": "{:.2g}" for s in STEPS_SHOWN}}
    tables = [markdown(rows, numbers), markdown(worst_rows(rows), numbers), markdown(fits, numbers),
              markdown(pairs, numbers)]
    if args.quick:
        print("\n\n".join(tables))
        return 0
    minutes = (time.perf_counter() - started) / 60
    text = (f"# Noise: how far apart correct runs are\n\n{datetime.date.today().isoformat()} · {machine()} · "
            + " · ".join(f"{k} {v}" for k, v in versions().items())
            + f" · load average {load[0]:.1f} at the start · {minutes:.1f} min (`python benchmarks/noise.py`)\n\n"
            "Differences as a fraction of the dtype's tolerance (float32: rtol 1e-4, atol 1e-6; float64: rtol 1e-9,"
            " atol 1e-12), on the verdicts' scale (atol + rtol × the largest parameter or step loss compared; the"
            " worse of parameters and step losses). Each task at its default learning rate and loss; linreg 2"
            " epochs of 160 rows in batches of 10, the MLP 5 epochs of 80 rows in batches of 16, the iris"
            " classifier 3 epochs in batches of 16. `rerun`: the same settings twice in one process. The shadow"
            " is the same backend in float64 on the float32 run's rounded data, start and hyper-parameters"
            " (`backend_compare.comparison.noise`).\n\n"
            "## Per backend\n\n" + tables[0] + "\n\n## The largest noise of a correct pair\n\n" + tables[1]
            + f"\n\n## Along a long run: the MLP at its defaults, {LONG_EPOCHS} epochs ({LONG_EPOCHS * 13} steps),"
            " lr 0.1\n\n`relative`: the largest parameter difference over the largest parameter, at the snapshot"
            " nearest the step. `power`: k in difference ∝ steps^k; `per_1000_steps`: the factor of an exponential"
            " fit; both fitted where the difference is above 0 and below 1e-2 of the parameters.\n\n" + tables[2]
            + "\n\nThe same long runs, each backend against the first at the end: the pair's difference and the first"
            " backend's own rounding noise (its shadow or twin), both as fractions of the"
            " tolerance the verdict holds the pair to (the dtype's, widened by the allowances it names). The"
            f" verdicts call a pair beyond tolerance `within noise` up to {NOISE_MARGIN:g} × that noise"
            " (NOISE_MARGIN in comparison/verdicts.py).\n\n" + tables[3] + "\n")
    csv = Path(args.out).with_suffix(".csv")
    import pandas as pd
    write_atomic(csv, pd.DataFrame(curves).to_csv(index=False).encode())  # Ctrl-C while saving: whole or absent
    write_atomic(Path(args.out), text.encode())
    print(f"wrote {args.out} and {csv.name} in {minutes:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
