"""The pytest plugin as another project's tests see it (pytester runs them in a scratch folder)."""

from __future__ import annotations

import pytest

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
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_predict_shape?numpy? PASSED*", "*test_predict_shape?torch? PASSED*",
                                 "*test_predict_shape?mxnet? PASSED*"])


def test_backends_option_restricts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-v", "--backends", "numpy,torch")
    result.assert_outcomes(passed=3)
    assert "mxnet" not in result.stdout.str()
    bad = pytester.runpytest_subprocess("--backends", "jax")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--backends must name backends from numpy, torch, mxnet; received: 'jax'*"])


def test_missing_backend_is_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("import sys\nsys.modules['mxnet'] = None  # as if MXNet were not installed\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=3, skipped=1)
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
    result = pytester.runpytest_subprocess("--backends", "numpy,torch,mxnet")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: numpy vs torch, output: 1 of 6 elements differ beyond rtol=1e-09, atol=1e-12; "
        "worst at index (2, 1): 5.000001 vs 5.0 (abs diff 1e-06)*"])
