"""Per-step time of the default linreg and the breast_cancer classifier, by default (workers side by side) and
with --jobs 1, in two checkouts of this repository, runs alternated:

    git worktree add /tmp/before OLD_COMMIT
    python benchmarks/before_after.py /tmp/before . 3      # prints a markdown table (medians of 3, µs)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from process_tables import TASK_STEPS, compare_steps

CASES = TASK_STEPS
HOW = {"default": [], "--jobs 1": ["--jobs", "1"]}
BACKENDS = ("numpy", "torch", "mxnet", "jax", "tensorflow")


def main(argv: list[str]) -> int:
    roots = {"before": argv[0], "after": argv[1]}
    repeats = int(argv[2]) if len(argv) > 2 else 3
    steps: dict[tuple[str, str, str, str], list[float]] = {}
    for _ in range(repeats):
        for case, args in CASES.items():
            for tree, root in roots.items():
                for how, extra in HOW.items():
                    for backend, us in compare_steps([*args, *extra], cwd=Path(root))[1].items():
                        steps.setdefault((case, backend, tree, how), []).append(us)
    print("| case | backend | " + " | ".join(f"{tree}: {how}" for tree in roots for how in HOW) + " |")
    print("|---|---|" + "---|" * (len(roots) * len(HOW)))
    for case in CASES:
        for backend in BACKENDS:
            cells = [f"{np.median(steps[(case, backend, tree, how)]):.0f}" for tree in roots for how in HOW]
            print(f"| {case} | {backend} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
