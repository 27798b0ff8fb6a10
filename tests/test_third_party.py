"""A backend of someone else's: installed from its own folder, registered through the entry-point group
`backend_compare.backends`, it runs in compare.py like a built-in one, and check_backend names what
a broken one gets wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend_compare.backends import Backend
from backend_compare.backends.check import check_backend
from backend_compare.backends.testing import ALLOWANCES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = {
    "pyproject.toml": """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mine-backend"
version = "0.1"

[project.entry-points."backend_compare.backends"]
mine = "mine_backend:MineBackend"
sloppy = "mine_backend:SloppyBackend"

[tool.setuptools]
py-modules = ["mine_backend"]
""",
    "mine_backend.py": '''
"""Two backends built on the numpy one: a faithful one and one whose gradients are twice too large."""
from backend_compare.backends.numpy_backend import NumpyBackend


class MineBackend(NumpyBackend):
    name = "mine"


class SloppyBackend(NumpyBackend):
    name = "sloppy"
    modes = ("eager",)

    def _loss_and_grads(self, X, y):
        loss, grads = super()._loss_and_grads(X, y)
        return loss, {key: 2 * value for key, value in grads.items()}
''',
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The package installed (pip, from its folder) into a folder of its own; the environment that sees it."""
    source, target = tmp_path_factory.mktemp("mine"), tmp_path_factory.mktemp("site")
    for name, text in PACKAGE.items():
        (source / name).write_text(text)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    return {**os.environ, "PYTHONPATH": str(target)}


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_an_installed_backend_runs_in_compare_py(installed: dict[str, str]) -> None:
    for executor in ("process", "inline"):
        result = subprocess.run([sys.executable, "compare.py", "--backends", "numpy,mine", "--dtype", "float64",
                                 "--format", "json", "--executor", executor], cwd=ROOT, env=installed,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert [row["backend"] for row in report["summary"]] == ["numpy", "mine"]
        assert report["parity"][0]["max_abs_param_diff"] == 0.0


def test_a_mode_an_installed_backend_lacks_is_refused_before_training(installed: dict[str, str]) -> None:
    for executor in ("process", "inline"):
        result = subprocess.run([sys.executable, "compare.py", "--backends", "numpy,sloppy", "--mode", "compiled",
                                 "--executor", executor], cwd=ROOT, env=installed, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr == ("compare.py: error: mode must be one of usual, eager for the sloppy backend; "
                                 "received: 'compiled'\n")


def test_check_backend_passes_a_good_one_and_names_what_a_bad_one_gets_wrong(installed: dict[str, str]) -> None:
    good = python("from backend_compare.backends import get_backend\n"
                  "from backend_compare.backends.check import check_backend\n"
                  "check_backend(get_backend('mine')); print('passes')", installed)
    assert good.stdout.strip() == "passes", good.stderr
    bad = python("from backend_compare.backends import get_backend\n"
                 "from backend_compare.backends.check import check_backend\n"
                 "check_backend(get_backend('sloppy'))", installed)
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith("AssertionError: SloppyBackend fails 3 of 8 checks: gradients against finite differences")
    assert "parity with the numpy backend" in last and "the layer types it declares" in last


def test_check_backend_verifies_each_capability_a_backend_declares() -> None:
    from backend_compare.backends.numpy_backend import NumpyBackend

    class Boasting(NumpyBackend):
        name = "boasting"
        modes = ("eager", "turbo")

    class Forgetful(NumpyBackend):  # declares the replay hooks, and its state does not round trip
        name = "forgetful"

        def _set_optimizer_state(self, state: dict) -> None:
            pass

    with pytest.raises(AssertionError, match=r"fails 1 of 8 checks: the modes it declares: AssertionError: modes "
                                             r"must be among eager, compiled and include usual_mode"):
        check_backend(Boasting)
    with pytest.raises(AssertionError, match=r"fails 1 of 8 checks: the replay hooks it declares: AssertionError: \S+ "
                                             r"after a step from a restored optimiser state differs"):
        check_backend(Forgetful)


def test_the_built_in_backends_pass_check_backend(backend: type[Backend]) -> None:
    allow = [allowance.name for allowance in ALLOWANCES.values() if allowance.backend == backend.name]
    check_backend(backend, allow)  # with exactly the allowances documented for it
