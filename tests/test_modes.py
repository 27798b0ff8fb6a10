"""Eager against compiled: every backend runs its step both ways, the two agree within the dtype's
tolerance, and the report times the compiling first steps apart from the steady ones."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from backend_compare.backends import BACKENDS, MODES, Backend, mlp_spec
from backend_compare.backends.testing import assert_close
from backend_compare.comparison.run import BackendResult, train
from backend_compare.tasks import get_task
from tests.conftest import RunCli, load_backend

# Few steps: JAX op by op takes some 20 ms a step. Batches of 8 over 40 rows, then a short one of 4 over
# the mlp's: the second batch size is traced again where a compiler traces per shape.
PROBLEMS = {"linreg": {"epochs": 1, "batch_size": 8, "n_samples": 50},
            "mlp": {"epochs": 2, "batch_size": 8, "n_samples": 55}}


@cache
def run(name: str, task: str, dtype: str, mode: str) -> BackendResult:
    problem = get_task(task).make_problem(seed=0, **PROBLEMS[task])
    model = load_backend(name)(problem.spec, dtype=dtype, optimizer="adam", lr=2**-7, weight_decay=2**-6,
                               mode=mode)
    return train(model, problem)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("task", PROBLEMS)
@pytest.mark.parametrize("name", BACKENDS)
def test_eager_and_compiled_follow_the_same_trajectory(name: str, task: str, dtype: str) -> None:
    eager, compiled = run(name, task, dtype, "eager"), run(name, task, dtype, "compiled")
    assert (eager.mode, compiled.mode) == ("eager", "compiled")
    for key in eager.params:
        assert_close(compiled.params[key], eager.params[key], dtype=dtype, what=f"{name} {dtype} {key}")
    assert_close(compiled.step_losses, eager.step_losses, dtype=dtype, what=f"{name} {dtype} step losses")


@pytest.mark.parametrize("task", PROBLEMS)
def test_the_first_step_of_each_batch_size_is_timed_apart(task: str) -> None:
    result = run("numpy", task, "float64", "compiled")
    sizes = 1 if task == "linreg" else 2  # mlp: 44 training rows in batches of 8 leave a last batch of 4
    assert result.compile_steps == sizes and result.steady_steps == result.steps - sizes
    assert result.compile_seconds > 0 and result.seconds > 0


def test_usual_mode_is_each_frameworks_own(backend: type[Backend]) -> None:
    model = backend(mlp_spec(1, (3,), 1, "tanh"))
    assert model.mode == backend.usual_mode and model.mode in backend.modes
    assert set(backend.modes) <= set(MODES) - {"usual"}


def test_a_mode_the_backend_lacks_is_refused(backend: type[Backend]) -> None:
    with pytest.raises(ValueError, match="mode must be one of usual, eager, compiled; received: 'jit'"):
        backend(mlp_spec(1, (3,), 1, "tanh"), mode="jit")

    class EagerOnly(backend):  # type: ignore[valid-type,misc]
        modes = ("eager",)
        usual_mode = "eager"

    with pytest.raises(ValueError, match=f"mode must be one of usual, eager for the {backend.name} backend; "
                                         "received: 'compiled'"):
        EagerOnly(mlp_spec(1, (3,), 1, "tanh"), mode="compiled")


def test_both_modes_in_one_run_with_their_parity(cli: RunCli) -> None:
    ran = cli("--backends", "numpy,jax", "--mode", "eager,compiled", "--dtype", "float64", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    rows = {row["backend"]: row for row in report["summary"]}
    assert list(rows) == ["numpy:eager", "numpy:compiled", "jax:eager", "jax:compiled"]
    assert [row["mode"] for row in rows.values()] == ["eager", "compiled"] * 2
    assert report["options"]["mode"] == "eager,compiled"
    pairs = {(row["backend_a"], row["backend_b"]): row for row in report["parity"]}
    assert pairs[("jax:eager", "jax:compiled")]["max_abs_param_diff"] < 1e-12


def test_a_row_of_its_own_mode_in_a_worker(cli: RunCli) -> None:
    ran = cli("--backends", "numpy,jax:eager", "--executor", "process", "--epochs", "1", "--format", "json")
    assert ran.code == 0, ran.err
    rows = {row["backend"]: row for row in json.loads(ran.out)["summary"]}
    assert {name: row["mode"] for name, row in rows.items()} == {"numpy": "eager", "jax:eager": "eager"}
    assert all(np.isfinite(row["compile_seconds"]) and row["us_per_step"] > 0 for row in rows.values())


@pytest.mark.parametrize("given,message", [
    (["--mode", "jit"], "argument --mode: expected one of usual, eager, compiled, or several once each"),
    (["--mode", "eager,eager"], "argument --mode: expected one of usual, eager, compiled, or several once each"),
    (["--backends", "torch:fast"], "argument --backends: expected names from"),
])
def test_bad_modes_are_usage_errors(cli: RunCli, given: list[str], message: str) -> None:
    ran = cli(*given)
    assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err
