"""The benchmark script at its smallest size: it runs and prints its table (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from backend_compare.backends import BACKENDS

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_quick_prints_a_table_for_every_backend() -> None:
    result = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--repeats", "1"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.strip().splitlines()
    assert "suite_us" in header and "plain_us" in header and "ratio" in header and rule.startswith("|:")
    assert sorted({row.split("|")[2].strip() for row in rows}) == sorted(BACKENDS)
    assert len(rows) == 2 * len(BACKENDS)  # linreg and the MLP
    for row in rows:  # each ratio is the two timings it is made of, both measured (positive)
        cells = [cell.strip() for cell in row.split("|")]
        steps, suite_us, plain_us, ratio = int(cells[6]), float(cells[7]), float(cells[8]), float(cells[9])
        assert steps > 0 and suite_us > 0 and plain_us > 0
        assert abs(ratio - suite_us / plain_us) <= 0.01 + 0.02 * ratio, row  # printed values are rounded


def test_benchmark_quick_held_to_one_thread_prints_its_rows_as_json() -> None:
    # --threads starts the script afresh with the variables a worker gets, so the frameworks read them at import
    result = subprocess.run([sys.executable, "benchmarks/run.py", "--quick", "--json", "--threads", "1", "--repeats",
                             "1", "--backends", "numpy,torch"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted((row["model"], row["backend"]) for row in rows) == [
        ("linreg", "numpy"), ("linreg", "torch"), ("mlp", "numpy"), ("mlp", "torch")]
    assert all(row["suite_us"] > 0 and row["plain_us"] > 0 for row in rows)
