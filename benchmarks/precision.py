"""Reduced precision: how far apart torch, JAX and Keras are in bfloat16, float16 and their mixed precisions, and
how far each is from the float64 shadow, so the parity tolerances of those numerics are measured, not guessed.

    python benchmarks/precision.py            # writes benchmarks/PRECISION.md (about 15 minutes on 2 cores)
    python benchmarks/precision.py --quick    # linreg and the MLP, one seed, short runs; prints, writes nothing

Each task runs as `compare.py --task TASK --dtype … | --precision …` runs it (its defaults; the plan's options), one
run per seed, every backend inline from the same start and batches. A pair's difference is given on the verdicts'
scale with rtol 1 and atol 0: the largest parameter (or step loss) difference over the largest value compared.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import markdown  # noqa: E402

from backend_compare.backends import get_backend  # noqa: E402
from backend_compare.backends.tolerances import TOLERANCES  # noqa: E402
from backend_compare.cli.console import UsageError  # noqa: E402
from backend_compare.cli.plan import prepare  # noqa: E402
from backend_compare.comparison.numerics import shadow_result, shadow_table  # noqa: E402
from backend_compare.comparison.report import machine, versions  # noqa: E402
from backend_compare.comparison.run import OK, train  # noqa: E402
from backend_compare.comparison.saved import write_atomic  # noqa: E402
from backend_compare.comparison.verdicts import NOISE_MARGIN, tolerance_ratio  # noqa: E402

FRAMEWORKS = ("torch", "jax", "tensorflow")
NUMERICS = (("--dtype", "bfloat16"), ("--dtype", "float16"), ("--precision", "mixed-bfloat16"),
            ("--precision", "mixed-float16"))
TASKS = {"linreg": [], "mlp": [], "softmax": ["--dataset", "iris"], "classifier": ["--dataset", "iris"],
         "cnn": ["--epochs", "2"], "sequence": []}
QUICK = {"linreg": [], "mlp": ["--epochs", "20"]}
OPTIMIZERS = ("sgd", "adam")
RELATIVE = {"rtol": 1.0, "atol": 0.0}


def runs(tasks: dict[str, list[str]], seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    """Every task, numerics, optimiser and seed: each pair's relative difference and each backend's shadow error."""
    rows = []
    for (task, extra), (flag, numerics), optimizer, seed in itertools.product(tasks.items(), NUMERICS, OPTIMIZERS,
                                                                               seeds):
        argv = ["--task", task, flag, numerics, "--optimizer", optimizer, "--seed", str(seed), "--executor", "inline",
                "--backends", ",".join(FRAMEWORKS), *extra]
        try:
            plan = prepare(argv, runners=False)
        except (UsageError, ValueError) as err:  # a framework that cannot run it: the plan refuses it by name
            rows.append({"numerics": numerics, "task": task, "optimizer": optimizer, "seed": seed, "refused": str(err)})
            continue
        problem = plan.problems(seed)
        results = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's autocast warns once about float16 on the CPU
            for name in FRAMEWORKS:
                results.append(train(get_backend(name)(problem.spec, **plan.options), problem))
        shadow = shadow_table(results, shadow_result(problem, plan.options))
        pairs = {f"{a.backend}-{b.backend}": tolerance_ratio(a, b, RELATIVE) if OK == a.status == b.status
                 else float("nan") for a, b in itertools.combinations(results, 2)}
        rows.append({"numerics": numerics, "task": task, "optimizer": optimizer, "seed": seed,
                     "steps": results[0].steps, **pairs,
                     **{f"{row.backend} vs shadow": row.param_error for row in shadow.itertuples()}})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def worst(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per numerics and optimiser: the largest pair difference over every task and seed, where, the tolerance's
    ratio to it, and the run's noise there (the closest backend's distance from the float64 shadow): a pair beyond
    the tolerance but within NOISE_MARGIN times the noise is what rounding alone does to that trajectory."""
    found = []
    for (_, numerics), optimizer in itertools.product(NUMERICS, OPTIMIZERS):
        among = [(value, row, pair) for row in rows if row["numerics"] == numerics and "refused" not in row
                 and row["optimizer"] == optimizer
                 for pair, value in row.items() if "-" in pair and "vs" not in pair and value == value]
        if not among:
            continue
        value, row, pair = max(among, key=lambda item: item[0])
        rtol = TOLERANCES[numerics]["rtol"]
        noise = min(row[key] for key in row if key.endswith("vs shadow"))
        found.append({"numerics": numerics, "optimizer": optimizer, "largest pair difference": value,
                      "where": f"{pair}, {row['task']} seed {row['seed']} ({row['steps']} steps)", "rtol": rtol,
                      "of tolerance": value / rtol, "noise there": noise,
                      "verdict": "within tolerance" if value <= rtol else
                      "within noise" if value <= NOISE_MARGIN * noise else "BEYOND"})
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two tasks, one seed, short; print only")
    args = parser.parse_args(argv)
    began, load = time.time(), os.getloadavg()[0]
    rows = runs(QUICK if args.quick else TASKS, (0,) if args.quick else (0, 1))
    tables = (f"## The largest difference per numerics and optimiser, against the tolerance and the noise\n\n"
              f"{markdown(worst(rows))}\n\n"
              f"## Every run\n\n{markdown(rows)}\n")
    if args.quick:
        print(tables)
        return 0
    stamp = (f"{datetime.date.today()} · {machine()} · "
             + " · ".join(f"{name} {version}" for name, version in versions().items())
             + f" · load average {load:.1f} at the start · {(time.time() - began) / 60:.1f} min "
               "(`python benchmarks/precision.py`)")
    text = (f"# Reduced precision: how far apart the frameworks are\n\n{stamp}\n\n"
            "Each pair's difference is the largest parameter or step-loss difference over the largest value "
            "compared (the verdicts' scale with rtol 1, atol 0), at each task's defaults as compare.py runs it, "
            "seeds 0 and 1, SGD and Adam. `vs shadow`: each backend's largest parameter error against the float64 "
            "shadow (NumPy by hand in float64 from the same rounded start, data and batches), each parameter's "
            "over its largest value. A refused run names what the framework cannot do. The tolerances "
            "(backends/tolerances.py) are set about twice the largest pair difference where rounding is not "
            "amplified; where Adam amplifies it (O(1) from the shadow), a pair is held against that noise, as the "
            "verdicts do (comparison/verdicts.py).\n\n" + tables)
    write_atomic(ROOT / "benchmarks" / "PRECISION.md", text.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
