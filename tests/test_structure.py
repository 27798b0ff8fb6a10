"""The package's structure, read with ordinary tools: every module imports, the imports between its modules
form no circle, and no module imports another module's private names."""

from __future__ import annotations

import ast
import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import backend_compare

PACKAGE = Path(backend_compare.__file__).parent
# Modules that load a framework at import: imported by the backend tests, not here (MXNet changes numpy.bool,
# TensorFlow selects the Keras backend for the process).
FRAMEWORK_MODULES = {f"backend_compare.backends.{name}_backend" for name in ("torch", "mxnet", "jax", "tensorflow")}


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (through the links to backends/, tasks/ and the rest)."""
    found = {}
    paths = [Path(folder, file) for folder, _, files in os.walk(PACKAGE, followlinks=True) for file in files]
    for path in sorted(path for path in paths if path.suffix == ".py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path) -> Iterator[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import in the module, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            for alias in node.names:
                yield module, alias.name, node.lineno


def graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a name imported from a package that is one of its modules
    counts as that module)."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, taken, _ in imports(name, path):
            target = f"{module}.{taken}" if taken and f"{module}.{taken}" in known else module
            if target in known and target != name and not name.startswith(f"{target}."):
                edges[name].add(target)  # a module's own package runs first anyway: not an edge of the design
    return edges


def test_every_module_imports() -> None:
    for name in modules():
        if name not in FRAMEWORK_MODULES and not name.endswith("pytest_plugin"):
            importlib.import_module(name)


def test_the_imports_between_modules_form_no_circle() -> None:
    edges, state, cycles = graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_no_module_imports_another_modules_private_names() -> None:
    found = []
    for name, path in modules().items():
        for module, taken, line in imports(name, path):
            if module.startswith("backend_compare") and module != name and taken and taken.startswith("_") \
                    and not taken.startswith("__"):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {taken} from {module}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", ["backend_compare.layers", "backend_compare.backends", "backend_compare.tasks"])
def test_registries_import_no_framework(name: str) -> None:
    import subprocess
    import sys

    probe = (f"import sys, {name}; loaded = [m for m in ('torch', 'mxnet', 'jax', 'tensorflow', 'keras') "
             "if m in sys.modules]; print(loaded)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "[]\n"


def copy_checkout(target: Path) -> Path:
    """This checkout's files (links kept as links) in `target`: a second checkout."""
    import shutil
    import subprocess

    root = PACKAGE.parent
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                            text=True, check=True).stdout.split()
    for name in listed:
        source, copied = root / name, target / name
        copied.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copied.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, copied)
    return target


@pytest.mark.parametrize("changed", ["layers/linear.py", "backend_compare/cli/run.py", "backends/base.py",
                                     "tasks/linreg.py"])
def test_the_sweep_caches_code_version_covers_every_module(tmp_path: Path, changed: str) -> None:
    """A sweep's cached results are keyed by a hash of the package's code: a change to any module is another key."""
    import subprocess
    import sys

    other = copy_checkout(tmp_path / "other")
    probe = "from backend_compare.comparison.sweep import code_version; print(code_version())"

    def version() -> str:
        return subprocess.run([sys.executable, "-c", probe], cwd=other, capture_output=True, text=True,
                              check=True).stdout

    before = version()
    (other / changed).write_text((other / changed).read_text() + "\n# changed\n")
    assert version() != before


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_checkouts_compare_py_runs_that_checkouts_code(tmp_path: Path, executor: str) -> None:
    """Two checkouts, this one installed editable: the other's compare.py (and its workers) run its own code."""
    import json
    import subprocess
    import sys

    root = PACKAGE.parent
    other = copy_checkout(tmp_path / "other")
    numpy_backend = other / "backends" / "numpy_backend.py"
    numpy_backend.write_text(numpy_backend.read_text().replace("(no framework default)", "(the other checkout)"))
    argv = ["--task", "linreg", "--backends", "numpy", "--init", "native", "--epochs", "1", "--format", "json",
            "--executor", executor]
    for checkout, expected in ((other, "(the other checkout)"), (root, "(no framework default)")):
        result = subprocess.run([sys.executable, str(checkout / "compare.py"), *argv], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        described = json.loads(result.stdout)["init"][0]["initialisation and batches"]
        assert described.endswith(expected), (checkout, described)
