"""Memory: checked from the settings before anything is built, estimated above what a run really uses,
and no part of a run grows with epochs × rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend_compare.backends import BACKENDS, Backend, get_backend, mlp_spec
from backend_compare.backends.batches import EpochBatches, shuffled_epochs
from backend_compare.comparison import memory
from backend_compare.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [
    ["--backends", ",".join(BACKENDS), "--n-samples", "1000000", "--batch-size", "800000", "--epochs", "3"],
    ["--backends", "numpy,torch", "--task", "mlp", "--n-samples", "100000", "--hidden", "64", "--lr", "0.01",
     "--batch-size", "1000", "--epochs", "1", "--loss", "huber", "--optimizer", "adam"],
])
def test_the_estimate_bounds_the_measured_peak_without_wasting_the_machine(args: list[str], tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "benchmarks/memory_probe.py", *args, "--out", str(tmp_path / "run")],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    measured = json.loads(probe.stdout.strip().splitlines()[-1])
    assert measured["code"] == 0, probe.stderr
    assert measured["growth_mb"] <= measured["estimate_mb"] <= 3 * measured["growth_mb"] + 32, measured
    assert measured["imports_mb"] <= measured["import_estimate_mb"], measured


def test_the_largest_part_names_its_option() -> None:
    parts = [memory.Part("the data", "--n-samples", 10 * 2**30), memory.Part("the loss of every step", "--epochs", 1)]
    with pytest.raises(memory.DoesNotFit, match=r"needs about 10 GB and 1 GB is free; most of it is the data "
                                                r"\(10 GB\), set by --n-samples$"):
        memory.check_fits(parts, 2**30)
    memory.check_fits(parts, 11 * 2**30)


def test_free_memory_is_what_the_machine_reports_within_its_limits() -> None:
    import psutil

    assert 0 < memory.available_bytes() <= psutil.virtual_memory().total


def test_a_billion_epochs_builds_no_batch_order() -> None:
    problem = get_task("linreg").make_problem(epochs=10**9, n_samples=1000)  # eager orders would be 3 TB
    assert len(problem.epoch_batches) == 10**9 and problem.epoch_batches.steps_per_epoch == 80
    assert [len(batch) for batch in problem.epoch_batches[0]] == [10] * 80


def test_epochs_made_when_asked_are_those_drawn_in_sequence() -> None:
    rng = np.random.default_rng(3)
    epochs = shuffled_epochs(rng, 10, 4, 5)
    state_after = rng.bit_generator.state
    replay = np.random.default_rng(3)
    expected = [replay.permutation(10) for _ in range(5)]
    assert rng.bit_generator.state == state_after  # the caller's generator is left where it was
    for epoch in (4, 1, 1, 0, 3, -1):  # any order, any number of times
        np.testing.assert_array_equal(np.concatenate(epochs[epoch]), expected[epoch])
    assert [[b.tolist() for b in epoch] for epoch in epochs] == [[b.tolist() for b in epoch] for epoch in epochs[:]]
    with pytest.raises(IndexError):
        epochs[5]
    in_order = shuffled_epochs(rng, 10, 4, 2, shuffle=False)
    assert [batch.tolist() for batch in in_order[1]] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_native_batches_are_made_one_epoch_at_a_time(backend: type[Backend]) -> None:
    model = backend(mlp_spec(1, (), 1, "tanh"))
    name = backend.name
    batches = model.native_batches(10, 4, 10**9, seed=1)
    assert isinstance(batches, EpochBatches) and len(batches) == 10**9
    first, second = batches[0], batches[1]
    assert sorted(np.concatenate(first).tolist()) == list(range(10))
    again = model.native_batches(10, 4, 3, seed=1)
    assert [b.tolist() for b in again[1]] == [b.tolist() for b in second]
    assert get_backend(name) is type(model)


def test_a_long_epoch_is_gathered_in_chunks_of_whole_batches_with_the_same_steps() -> None:
    from backend_compare.backends import get_backend
    from backend_compare.backends.batches import gathered
    from backend_compare.layers import Dropout, Linear

    order, bounds = np.arange(10)[::-1].copy(), [(0, 4), (4, 7), (7, 10)]
    chunks = list(gathered(order, bounds, 7))
    assert [list(rows) for rows, _ in chunks] == [[9, 8, 7, 6, 5, 4, 3], [2, 1, 0]]
    assert [chunk for _, chunk in chunks] == [[(0, 4), (4, 7)], [(0, 3)]]
    spec = [Linear(3, 4), Dropout(0.5), Linear(4, 1)]  # the masks follow the step count across chunks too
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    batches = [rng.permutation(40)[:8] for _ in range(6)]
    whole, chunked = (get_backend("numpy")(spec, dtype="float64") for _ in range(2))
    for model, most in ((whole, 10**6), (chunked, 9)):
        model.load(X, y)
        model._rows_per_gather = most  # the chunk a small GATHER_BYTES would give
        model.train_epoch(batches)
    for key, value in whole.get_params().items():
        np.testing.assert_array_equal(chunked.get_params()[key], value)
