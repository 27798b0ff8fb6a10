"""Shared mode: every pair of backends follows the same trajectory on a whole linreg run."""

from __future__ import annotations

import itertools
from functools import lru_cache

import pytest

from backends import BACKENDS
from backends.testing import assert_close
from comparison.run import BackendResult, train
from tasks import get_task
from tests.conftest import load_backend

PAIRS = list(itertools.combinations(BACKENDS, 2))
# lr 2⁻⁵ and batch 8 (rescale 1/8) are exact in float32, so MXNet's 32-bit hyper-parameters cost nothing.
FLOAT32_EXACT = {"lr": 2**-5, "batch_size": 8}
REFERENCE = {"lr": 0.03, "batch_size": 10}
MXNET_HYPERPARAMETERS = (
    "MXNet's optimiser ops take lr and rescale_grad (1/batch_size) as 32-bit float even for float64 "
    "weights, so with lr=0.03 and batch 10 its float64 trajectory differs from the others by ~1e-7"
)


@lru_cache(maxsize=None)
def run(name: str, dtype: str, lr: float, batch_size: int) -> BackendResult:
    problem = get_task("linreg").make_problem(seed=0, epochs=3, batch_size=batch_size)
    return train(load_backend(name)(problem.spec, dtype=dtype, lr=lr), problem)


def assert_same_trajectory(a: str, b: str, dtype: str, settings: dict, rtol: float | None = None) -> None:
    ra, rb = run(a, dtype, **settings), run(b, dtype, **settings)
    for key in ra.params:
        assert_close(ra.params[key], rb.params[key], dtype=dtype, what=f"{dtype} {key}: {a} vs {b}", rtol=rtol)
    assert_close(ra.step_losses, rb.step_losses, dtype=dtype, what=f"{dtype} step losses: {a} vs {b}", rtol=rtol)


@pytest.mark.parametrize("a,b", PAIRS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parity_with_float32_exact_hyperparameters(a: str, b: str, dtype: str) -> None:
    assert_same_trajectory(a, b, dtype, FLOAT32_EXACT)


@pytest.mark.parametrize("a,b", PAIRS)
def test_parity_float32_reference_settings(a: str, b: str) -> None:
    assert_same_trajectory(a, b, "float32", REFERENCE)


@pytest.mark.parametrize("a,b", PAIRS)
def test_parity_float64_reference_settings(a: str, b: str) -> None:
    if "mxnet" in (a, b):
        assert_same_trajectory(a, b, "float64", REFERENCE, rtol=1e-6)  # the size of the known difference
        pytest.xfail(MXNET_HYPERPARAMETERS)
    assert_same_trajectory(a, b, "float64", REFERENCE)


def test_mxnet_float64_difference_is_real_at_1e_9() -> None:
    """Pins the known difference: if MXNet ever matches at 1e-9 here, the xfail above is stale."""
    with pytest.raises(AssertionError, match="step losses"):
        assert_same_trajectory("numpy", "mxnet", "float64", REFERENCE)


def test_parameters_agree_at_1e_9_even_with_mxnet_hyperparameters() -> None:
    for a, b in PAIRS:
        ra, rb = run(a, "float64", **REFERENCE), run(b, "float64", **REFERENCE)
        for key in ra.params:
            assert_close(ra.params[key], rb.params[key], dtype="float64", what=f"{key}: {a} vs {b}")
