"""The registry imports frameworks only on demand and explains a missing or broken one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from backend_compare.backends import BACKENDS, get_backend, mlp_spec, param_shapes

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_importing_backends_and_tasks_loads_no_framework() -> None:
    result = run_python("""
        import sys
        import backend_compare, backend_compare.cli
        import backend_compare.backends as backends, backend_compare.tasks as tasks
        backends.available_backends()
        tasks.get_task("linreg").make_problem()
        print(sorted(m for m in ("torch", "mxnet", "jax", "tensorflow", "keras") if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=f"{', '.join(BACKENDS)}; received: 'cntk'"):
        get_backend("cntk")


def test_missing_torch_names_the_install_command() -> None:
    result = run_python("""
        import sys
        sys.modules["torch"] = None  # what Python does for a module that cannot be imported
        import backend_compare.backends as backends
        try:
            backends.get_backend("torch")
        except backends.BackendUnavailable as err:
            print(err)
    """)
    assert "pip install torch==2.13.0" in result.stdout, result.stderr


def test_broken_mxnet_attribute_error_is_explained(tmp_path: Path) -> None:
    fake = tmp_path / "mxnet"
    fake.mkdir()
    (fake / "__init__.py").write_text("import numpy\nnumpy.PZERO  # what numpy 2 breaks\n")
    result = run_python(f"""
        import sys, numpy
        del numpy.PZERO  # make the fake fail the way MXNet 1.9.1 does on numpy 2
        sys.path.insert(0, {str(tmp_path)!r})
        import backend_compare.backends as backends
        try:
            backends.get_backend("mxnet")
        except backends.BackendUnavailable as err:
            print(err)
    """)
    assert "AttributeError" in result.stdout and "pip install mxnet==1.9.1" in result.stdout, result.stderr


def test_params_round_trip_between_backends(backend) -> None:
    spec = mlp_spec(2, (3,), 1, "tanh")
    rng = np.random.default_rng(0)
    params = {name: rng.normal(size=shape) for name, shape in param_shapes(spec).items()}
    model = backend(spec, dtype="float64")
    model.set_params(params)
    round_trip = model.get_params()
    assert list(round_trip) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name in params:
        np.testing.assert_array_equal(round_trip[name], params[name])
        assert round_trip[name].dtype == np.float64
    X = rng.normal(size=(5, 2))
    expected = np.tanh(X @ params["0.weight"].T + params["0.bias"]) @ params["2.weight"].T + params["2.bias"]
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12, atol=1e-12)


def test_set_params_rejects_wrong_shapes_and_names(backend) -> None:
    model = backend(mlp_spec(2, (), 1, "tanh"))
    with pytest.raises(ValueError, match=r"params\['0.weight'\] must have shape \(1, 2\); received shape \(2, 1\)"):
        model.set_params({"0.weight": np.zeros((2, 1)), "0.bias": np.zeros(1)})
    with pytest.raises(ValueError, match=r"missing: \['0\.bias'\]"):
        model.set_params({"0.weight": np.zeros((1, 2))})


def test_registry_names() -> None:
    assert BACKENDS[:5] == ("numpy", "torch", "mxnet", "jax", "tensorflow")  # built-in first, then any installed ones


def test_the_registry_knows_each_built_in_backends_usual_mode(backend) -> None:  # type: ignore[no-untyped-def]
    """Said without importing a framework (torch:usual and torch:eager are found to be one row up front), and
    the same as the class says once imported."""
    from backend_compare.backends import registration

    assert registration(backend.name).usual_mode == backend.usual_mode


def test_an_expanded_mode_runs_a_backend_once_per_mode_it_has() -> None:
    """--mode usual,eager: torch's usual is eager, so torch runs once; jax's is compiled, so twice."""
    from backend_compare.cli.settings import RunSettings

    settings = RunSettings(mode=("usual", "eager"))
    assert settings.row_names(["numpy", "torch", "jax"]) == ["numpy:usual", "torch:usual", "jax:usual", "jax:eager"]


def test_tensorflow_keeps_its_start_up_log_lines_off_stderr() -> None:
    """TensorFlow's C++ side logs INFO lines on import, and float64 warnings while a tf.function is first
    optimised once JAX has set up logging in the process: none of them reach the user."""
    from tests.conftest import load_backend

    load_backend("jax"), load_backend("tensorflow")  # skipped (or failed, when named) like the others
    result = run_python("""
        import numpy as np
        from backend_compare.backends import get_backend, mlp_spec
        get_backend("jax")
        model = get_backend("tensorflow")(mlp_spec(2, (3,), 1, "tanh"), dtype="float64", optimizer="adam")
        model.fit(np.ones((10, 2)), np.ones(10), epochs=2, batch_size=4)
        print("trained")
    """)
    assert result.returncode == 0 and result.stdout == "trained\n", result.stderr
    assert result.stderr == ""


def test_the_registry_knows_each_built_in_backends_numerics(backend) -> None:  # type: ignore[no-untyped-def]
    """What the plan refuses without importing a framework is what the class runs once imported."""
    from backend_compare.backends import registration

    assert registration(backend.name).runs == backend.runs
