"""Parity verdicts: every pair of backends is held to its tolerance (the dtype's, widened only by the named
allowances that concern it), the report says which pairs are beyond it and by how much, and --check turns
that into the exit status a CI job gates on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend_compare.backends.tolerances import applicable
from backend_compare.comparison.verdicts import summary, verdict_words, worst_pairs
from tests.conftest import on_path

ROOT = Path(__file__).resolve().parents[1]

# A backend built on the numpy one whose gradient of one bias is 1 % too large: the bug a port can hide.
PACKAGE = {
    "off_backend.py": '''
from backend_compare.backends.numpy_backend import NumpyBackend



class OffBackend(NumpyBackend):
    name = "off"

    def _loss_and_grads(self, X, y):
        loss, grads = super()._loss_and_grads(X, y)
        grads["0.bias"] = grads["0.bias"] * 1.01
        return loss, grads
''',
    "off_backend-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: off-backend\nVersion: 0.1\n",
    "off_backend-0.1.dist-info/entry_points.txt": "[backend_compare.backends]\noff = off_backend:OffBackend\n",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return on_path(tmp_path_factory.mktemp("off"), PACKAGE)


def compare(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "compare.py", "--executor", "inline", "--dtype", "float64", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_one_percent_gradient_bug_is_beyond_tolerance_and_fails_the_check(env: dict[str, str]) -> None:
    shown = compare(env, "--backends", "numpy,off")
    assert shown.returncode == 0, shown.stderr  # without --check: reported, not failed
    assert "Verdict: 1 of 1 pair of backends beyond tolerance: numpy–off " in shown.stdout
    report = json.loads(compare(env, "--backends", "numpy,off", "--format", "json").stdout)
    row = report["parity"][0]
    assert row["tolerance"] == "float64" and row["tolerance_ratio"] > 1e3 and row["noise_ratio"] < 1e-3
    assert row["verdict"] == f"{row['tolerance_ratio']:.3g}× tolerance, above noise ({row['noise_ratio']:.2g}×)"
    assert report["parity_verdict"]["beyond"][0]["backend_b"] == "off"
    checked = compare(env, "--backends", "numpy,off", "--check")
    assert checked.returncode == 1
    assert checked.stderr.startswith("compare.py: --check failed: 1 of 1 pair of backends beyond tolerance: "
                                     "numpy–off ") and checked.stderr.count("\n") == 1


def test_faithful_backends_pass_the_check_with_the_allowances_they_need(cli) -> None:  # type: ignore[no-untyped-def]
    ran = cli("--backends", "numpy,torch,mxnet", "--dtype", "float64", "--optimizer", "adam", "--check",
              "--format", "json")
    assert ran.code == 0, ran.err
    rows = {(row["backend_a"], row["backend_b"]): row for row in json.loads(ran.out)["parity"]}
    assert rows[("numpy", "torch")]["tolerance"] == "float64"
    assert rows[("numpy", "mxnet")]["tolerance"] == "float64 + mxnet-float32-hyperparameters + mxnet-adam-beta2"
    assert all(row["verdict"] == "within tolerance" for row in rows.values())
    native = cli("--backends", "numpy", "--init", "native", "--check")
    assert native.code == 2 and "--check applies only with --init shared" in native.err


def test_allowances_apply_by_backend_dtype_and_optimiser() -> None:
    assert applicable("float64", ["numpy", "mxnet@np2:eager"], "sgd") == ["mxnet-float32-hyperparameters"]
    assert applicable("float32", ["numpy", "tensorflow"], "sgd") == []
    assert applicable("float32", ["numpy", "tensorflow"], "adam") == ["keras-adam-float32-beta2"]


def test_the_summary_counts_each_pair_at_its_worst_seed() -> None:
    seeds = [[{"backend_a": "a", "backend_b": "b", "tolerance_ratio": 0.5}],
             [{"backend_a": "a", "backend_b": "b", "tolerance_ratio": 3.0}]]
    verdict = summary(worst_pairs(seeds))
    assert verdict["line"] == "1 of 1 pair of backends beyond tolerance: a–b 3× tolerance"
    assert summary(worst_pairs([seeds[0]]))["line"] == "the pair of backends is within tolerance"
    assert verdict_words(1.0) == "within tolerance" and verdict_words(float("nan")) == "nothing to compare"


def test_a_pair_beyond_tolerance_beside_one_within_it_is_summarised() -> None:
    # records write NaN as None: the pair within tolerance has no noise_ratio, nor a pair with nothing to compare
    # a tolerance_ratio (a run of numpy,torch,off stopped with "TypeError: float() argument must be ... not
    # 'NoneType'")
    rows = [{"backend_a": "a", "backend_b": "b", "tolerance_ratio": 0.5, "noise_ratio": None},
            {"backend_a": "a", "backend_b": "c", "tolerance_ratio": 50.0, "noise_ratio": 1e-3},
            {"backend_a": "b", "backend_b": "c", "tolerance_ratio": None, "noise_ratio": None}]
    verdict = summary(worst_pairs([rows]))
    assert verdict["pairs"] == 2 and [pair["backend_b"] for pair in verdict["beyond"]] == ["c"]
    assert verdict["line"].startswith("1 of 2 pairs of backends beyond tolerance: a–c 50× tolerance, above noise")


def test_a_sweep_words_its_parity_as_a_run_does(env: dict[str, str], tmp_path: Path) -> None:
    """The sweep's parity rows: the worst seed in multiples of its tolerance, held against the rounding noise
    measured at that point, in paired.csv, the JSON and the printed tables."""
    swept = subprocess.run([sys.executable, "compare.py", "sweep", "--task", "linreg", "--backends", "numpy,off",
                            "--dtype", "float64", "--lr", "0.03,0.1", "--seeds", "2", "--epochs", "5",
                            "--executor", "inline", "--out", str(tmp_path / "sweep")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert swept.returncode == 0, swept.stderr
    assert "largest parameter difference, in multiples of its tolerance, from numpy's" in swept.stdout
    import pandas as pd

    paired = pd.read_csv(tmp_path / "sweep" / "paired.csv")
    parity = paired[paired["metric"] == "parity_to_reference"]
    assert len(parity) == 2 and (parity["value"] > 100).all() and (parity["pairs"] == 2).all()
    assert parity["verdict"].str.contains("× tolerance, above noise").all(), parity["verdict"].tolist()


def test_a_sweep_verdict_takes_the_worst_seed_and_its_noise() -> None:
    import pandas as pd

    from backend_compare.comparison.sweep import paired

    def row(backend: str, seed: int, parity: float, noise: float | None = None) -> dict[str, object]:
        return {"task": "linreg", "backend": backend, "seed": seed, "status": "ok", "final_val_loss": 1.0,
                "us_per_step": 10.0, "parity_to_reference": parity, "parity_tolerance": 1e-6, "noise_ratio": noise}

    jobs = pd.DataFrame([row("numpy", 0, 0.0), row("numpy", 1, 0.0),
                         row("torch", 0, 1e-7), row("torch", 1, 5e-7),  # within tolerance at both seeds
                         row("mxnet", 0, 1e-7), row("mxnet", 1, 3e-5, 20.0),  # 30× beside noise of 20×
                         row("jax", 0, 5e-4, 1.0), row("jax", 1, 2e-6, 1.0)])  # 500× against 1×: above
    found = paired(jobs, ["task"], "numpy", "float64")
    verdicts = dict(found[found["metric"] == "parity_to_reference"][["backend", "verdict"]].itertuples(index=False))
    assert verdicts == {"torch": "within tolerance", "mxnet": "30× tolerance, within noise (20×)",
                        "jax": "500× tolerance, above noise (1×)"}
