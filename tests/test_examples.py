"""The examples and the README's research-code example run as a user runs them, outside this repository."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend_compare.backends import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def readme_examples() -> list[str]:
    """The Python blocks of the README's section on using a backend from Python, in order."""
    section = (ROOT / "README.md").read_text().split("## Using a backend from Python", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, re.S)


Finish = Callable[[str], subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finish]:
    """Every example started at once, each in a fresh folder of its own, as a user runs it: each is mostly its
    frameworks' imports, one CPU each, so they overlap instead of waiting in turn. `finish(name)` waits for
    one (5 minutes, however long the others took) and fails unless it exited 0."""
    readme = readme_examples()
    imports = "import numpy as np\nfrom backend_compare import get_backend, mlp_spec\n"
    scripts: dict[str, tuple[list[str], dict[str, str]]] = {
        "train_linreg": ([sys.executable, str(ROOT / "examples" / "train_linreg.py")], {}),
        "gluon_to_torch": ([sys.executable, str(ROOT / "examples" / "gluon_to_torch.py")], {}),
        "parity_test": ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                        {"test_my_model_parity.py": (ROOT / "examples" / "test_my_model_parity.py").read_text()}),
        "readme_research": ([sys.executable, "example.py"], {"example.py": readme[0]}),
        "readme_classifier": ([sys.executable, "classifier.py"], {"classifier.py": imports + readme[1]}),
    }
    started: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, (args, files) in scripts.items():
            folder = tmp_path_factory.mktemp(name)
            for file, text in files.items():
                (folder / file).write_text(text)
            started[name] = subprocess.Popen(args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True)

        def finish(name: str) -> subprocess.CompletedProcess[str]:
            process = started[name]
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stdout + stderr
            return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

        yield finish
    finally:
        for process in started.values():  # a test that failed before waiting leaves no process behind
            if process.poll() is None:
                process.kill()
            process.communicate()


def test_train_linreg_example(examples: Finish) -> None:
    result = examples("train_linreg")
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(BACKENDS)
    assert len({line.split("loss")[0].split(None, 1)[1] for line in lines}) == 1  # same w and b everywhere


def test_gluon_to_torch_example(examples: Finish) -> None:
    result = examples("gluon_to_torch")
    assert "largest prediction gap after porting" in result.stdout


def test_parity_test_example_in_a_users_project(examples: Finish) -> None:
    result = examples("parity_test")
    assert f"{len(BACKENDS) + 1} passed" in result.stdout and "warning" not in result.stdout.lower()


def test_readme_research_example(examples: Finish) -> None:
    assert len(readme_examples()[0].strip().splitlines()) <= 15  # the first block: the one the fixture runs
    result = examples("readme_research")
    assert "prediction gap" in result.stdout


def test_readme_classifier_example(examples: Finish) -> None:
    result = examples("readme_classifier")
    accuracy = float(result.stdout.split("accuracy:")[1].split()[0])
    assert accuracy > 0.9, result.stdout  # iris, a small MLP, 50 epochs of Adam: measured 0.98


def test_console_script(tmp_path: Path) -> None:
    result = run([str(BIN / "backend-compare"), "--task", "linreg", "--backends", "numpy", "--format", "csv"],
                 tmp_path)
    assert result.stdout.startswith("backend,status,note,final_train_loss")
    bad = subprocess.run([str(BIN / "backend-compare"), "--lr", "0"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2
    assert bad.stderr == "backend-compare: error: lr must be a finite number > 0; received: 0.0\n"
