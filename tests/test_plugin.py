"""The pytest plugin as another project's tests see it (pytester runs them in a scratch folder)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend_compare.backends import BACKENDS, mlp_spec
from tests.conftest import load_backend


@pytest.fixture(autouse=True)
def frameworks_imported_once() -> None:
    """Inline pytester runs restore sys.modules afterwards; a framework first imported inside one would be
    imported a second time by the next, which torch and MXNet do not survive. Import them out here, and
    train each once: torch imports more of itself (torch._inductor's test operators) at its first step."""
    for name in BACKENDS:
        model = load_backend(name)(mlp_spec(1, (), 1, "tanh"))
        model.fit(np.zeros((2, 1)), np.zeros(2), epochs=1, batch_size=2)


USER_TESTS = '''
import numpy as np
from backend_compare.backends import mlp_spec

SPEC = mlp_spec(2, (3,), 1, "tanh")
PARAMS = {name: np.full(shape, 0.1) for name, shape in {"0.weight": (3, 2), "0.bias": (3,),
                                                        "2.weight": (1, 3), "2.bias": (1,)}.items()}
X = np.linspace(-1, 1, 8).reshape(4, 2)


def test_predict_shape(backend):
    assert backend(SPEC).predict(X).shape == (4, 1)


def test_predictions_agree(backend_parity):
    def predict(backend):
        model = backend(SPEC, dtype="float64")
        model.set_params(PARAMS)
        return {"output": model.predict(X)}
    results = backend_parity(predict)
    assert len(results) >= 2
'''


def test_backend_fixture_runs_once_per_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=len(BACKENDS) + 1)
    result.stdout.fnmatch_lines([f"*test_predict_shape?{name}? PASSED*" for name in BACKENDS])


def test_backends_option_restricts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-v", "--backends", "numpy,torch")
    result.assert_outcomes(passed=3)
    assert "mxnet" not in result.stdout.str()
    bad = pytester.runpytest("--backends", "cntk")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines([f"*--bc-backends must name backends from {', '.join(BACKENDS)}; received: 'cntk'*"])
    namespaced = pytester.runpytest("-v", "--bc-backends", "numpy,torch")
    namespaced.assert_outcomes(passed=3)


def test_a_projects_own_backend_fixture_is_its_own(pytester: pytest.Pytester) -> None:
    """A project's conftest with a `backend` fixture of its own: its tests run as it says, not once per backend."""
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef backend():\n    return 'mine'\n\n"
        "@pytest.fixture(params=['a', 'b'])\ndef check_backend(request):\n    return request.param\n")
    pytester.makepyfile(test_own="def test_own(backend):\n    assert backend == 'mine'\n\n"
                                 "def test_param(check_backend):\n    assert check_backend in 'ab'\n\n"
                                 "def test_ours(bc_backend):\n    assert bc_backend.name\n")
    result = pytester.runpytest("-v", "--bc-backends", "numpy,torch")
    result.assert_outcomes(passed=1 + 2 + 2)
    result.stdout.fnmatch_lines(["*test_own PASSED*", "*test_param?a? PASSED*", "*test_ours?torch? PASSED*"])


def test_a_projects_own_backends_option_is_its_own(pytester: pytest.Pytester) -> None:
    """A project's conftest that adds --backends: pytest starts, the option is the project's, --bc-backends ours."""
    pytester.makeconftest("def pytest_addoption(parser):\n    parser.addoption('--backends', default='theirs')\n\n"
                          "def pytest_configure(config):\n    print('backends:', config.getoption('backends'))\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-s", "--backends", "cluster-a", "--bc-backends", "numpy,torch")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["backends: cluster-a"])


def test_missing_backend_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    """In a fresh process (the one end-to-end plugin run): MXNet must not be importable there."""
    pytester.makeconftest("import sys\nsys.modules['mxnet'] = None  # as if MXNet were not installed\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=len(BACKENDS), skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*backend 'mxnet' is unavailable*pip install mxnet==1.9.1*"])
    named = pytester.runpytest_subprocess("--backends", "numpy,mxnet")
    named.assert_outcomes(passed=1, errors=2)  # asked for by name: an error in setup, not a skip


def test_failing_comparison_names_backends_element_and_difference(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user='''
import numpy as np

def test_disagreement(backend_parity):
    def run(backend):
        out = np.arange(6.0).reshape(3, 2)
        if backend.name == "torch":
            out[2, 1] += 1e-6
        return {"output": out}
    backend_parity(run)

def test_float32_tolerance(backend_parity):
    backend_parity(lambda backend: np.float32(1.0) + (1e-6 if backend.name == "mxnet" else 0.0), dtype="float32")
''')
    result = pytester.runpytest("--backends", "numpy,torch,mxnet")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: numpy vs torch, output: 1 of 6 elements differ beyond rtol=1e-09, atol=1e-12; "
        "worst at index (2, 1): 5.000001 vs 5.0 (abs diff 1e-06)*",
        "*verdict: 200× tolerance (held to float64)*"])  # no training to measure the noise of: it fails


def test_allowance_widens_only_the_pairs_it_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user='''
import numpy as np

def run(backend):
    return {"output": np.array([1.0 + (2e-7 if backend.name == "mxnet" else 0.0)])}

def test_needs_the_allowance(backend_parity):
    backend_parity(run, allow=["mxnet-float32-hyperparameters"])

def test_fails_without_it(backend_parity):
    backend_parity(run)

def test_unknown_allowance(backend_parity):
    backend_parity(run, allow=["anything-goes"])
''')
    result = pytester.runpytest("--backends", "numpy,torch,mxnet")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*numpy vs mxnet, output: 1 of 1 elements differ beyond rtol=1e-09*",
                                 "*allow must name allowances from mxnet-float32-hyperparameters, mxnet-adam-beta2*"])


def test_allowance_check_fails_when_the_difference_disappears_or_grows() -> None:
    from backend_compare.backends.testing import assert_allowance_holds

    base = np.array([1.0, 2.0])
    assert_allowance_holds({"x": (base * (1 + 5e-7), base)}, "mxnet-float32-hyperparameters")
    with pytest.raises(AssertionError, match="is no longer needed"):
        assert_allowance_holds({"x": (base, base)}, "mxnet-float32-hyperparameters")
    with pytest.raises(AssertionError, match="allowance mxnet-float32-hyperparameters"):
        assert_allowance_holds({"x": (base * (1 + 1e-5), base)}, "mxnet-float32-hyperparameters")


def test_the_plugin_coexists_with_a_projects_own_backends_and_tasks(tmp_path: Path) -> None:
    """A user's project with its own `backends` and `tasks` packages runs pytest with the plugin active."""
    for package in ("backends", "tasks"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"OWNER = 'the user, {package}'\n")
    (tmp_path / "test_own.py").write_text(
        "from backends import OWNER\nfrom tasks import OWNER as TASKS_OWNER\n\n"
        "def test_own_packages():\n    assert OWNER == 'the user, backends' and TASKS_OWNER == 'the user, tasks'\n\n"
        "def test_plugin(backend):\n    assert backend.__module__.startswith('backend_compare.backends.')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--backends", "numpy"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout + result.stderr


def test_backend_workers_give_models_in_worker_processes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_in_workers='''
import os
import numpy as np
from backend_compare.backends import get_backend, mlp_spec

SPEC = mlp_spec(2, (3,), 1, "tanh")


def test_same_numbers_elsewhere(backend):
    model = backend(SPEC, dtype="float64")
    assert model.versions["python"] and model._worker.process.pid != os.getpid()
    here = get_backend(backend.name)(SPEC, dtype="float64")
    model.set_params(here.get_params())
    X, y = np.linspace(-1, 1, 16).reshape(8, 2), np.linspace(0, 1, 8)
    model.fit(X, y, epochs=2, batch_size=4)
    here.fit(X, y, epochs=2, batch_size=4)
    for name, value in here.get_params().items():
        np.testing.assert_array_equal(model.get_params()[name], value)
''')
    result = pytester.runpytest_subprocess("--backends", "numpy,torch", "--backend-workers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failing_training_parity_names_the_step_stage_and_cause(pytester: pytest.Pytester) -> None:
    load_backend("mxnet")
    pytester.makepyfile(test_user='''
import numpy as np
from backend_compare import mlp_spec

SPEC = mlp_spec(2, (), 1, "tanh")
rng = np.random.default_rng(0)
X, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
START = {"0.weight": np.array([[0.3, -0.2]]), "0.bias": np.array([0.1])}

def test_my_model(backend_parity):
    def train(backend):
        model = backend(SPEC, dtype="float64", lr=0.03)
        model.set_params(START)
        return model.fit(X, y, epochs=2, batch_size=10).params_
    backend_parity(train)
''')
    result = pytester.runpytest("--backends", "numpy,mxnet")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: numpy vs mxnet, 0.weight: * elements differ beyond rtol=1e-09*",
        "*verdict: *× tolerance, above noise (*×) (held to float64)*",
        "*explain: numpy vs mxnet: differ from step 1*",
        "*first stage that differs from the same start: update, at *",
        "*held in float32 by mxnet*"])


def test_a_pair_within_the_noise_of_its_training_passes_with_a_warning(pytester: pytest.Pytester) -> None:
    """As compare.py --check: Adam at lr 0.1 over 1 600 float32 steps amplifies rounding until correct
    backends are far beyond the tolerance, and as far apart as numpy is from its own float64 shadow."""
    load_backend("torch")
    pytester.makepyfile(test_user='''
import numpy as np
from backend_compare import mlp_spec

SPEC = mlp_spec(2, (16,), 1, "tanh")
rng, start = np.random.default_rng(0), np.random.default_rng(1)
X, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1))
START = {"0.weight": start.normal(size=(16, 2)), "0.bias": np.zeros(16),
         "2.weight": start.normal(size=(1, 16)) * 0.3, "2.bias": np.zeros(1)}

def test_chaotic(backend_parity):
    def train(backend):
        model = backend(SPEC, dtype="float32", lr=0.1, optimizer="adam")
        model.set_params(START)
        return model.fit(X, y, epochs=200, batch_size=8).params_
    backend_parity(train, dtype="float32")
''')
    result = pytester.runpytest("--backends", "numpy,torch")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*ParityWithinNoise: numpy vs torch: *× tolerance, within noise (*×) (held to "
                                 "float32): beyond the tolerance, within what rounding does to this training*"])
