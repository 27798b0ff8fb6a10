"""The examples and the README's research-code example run as a user runs them, outside this repository."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from backend_compare.backends import BACKENDS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_train_linreg_example(tmp_path: Path) -> None:
    result = run([sys.executable, str(ROOT / "examples" / "train_linreg.py")], tmp_path)
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(BACKENDS)
    assert len({line.split("loss")[0].split(None, 1)[1] for line in lines}) == 1  # same w and b everywhere


def test_gluon_to_torch_example(tmp_path: Path) -> None:
    result = run([sys.executable, str(ROOT / "examples" / "gluon_to_torch.py")], tmp_path)
    assert "largest prediction gap after porting" in result.stdout


def test_parity_test_example_in_a_users_project(tmp_path: Path) -> None:
    shutil.copy(ROOT / "examples" / "test_my_model_parity.py", tmp_path)
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert f"{len(BACKENDS) + 1} passed" in result.stdout and "warning" not in result.stdout.lower()


def test_readme_research_example(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Using a backend from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert len(code.group(1).strip().splitlines()) <= 15
    (tmp_path / "example.py").write_text(code.group(1))
    result = run([sys.executable, "example.py"], tmp_path)
    assert "prediction gap" in result.stdout


def test_readme_classifier_example(tmp_path: Path) -> None:
    section = (ROOT / "README.md").read_text().split("## Using a backend from Python", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    imports = "import numpy as np\nfrom backend_compare import get_backend, mlp_spec\n"
    (tmp_path / "classifier.py").write_text(imports + blocks[1])
    result = run([sys.executable, "classifier.py"], tmp_path)
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
