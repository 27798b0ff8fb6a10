"""A hostile environment is one line, never a traceback: a package the suite imports that is missing, fails as
it is imported or is hidden by a file of the user's; a working directory deleted under the program; a
framework that kills its process as it is imported (a worker's crash is that backend's skip note or row)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPARE = str(ROOT / "compare.py")
TIMEOUT = 600  # a loaded two-core machine: the slowest of these starts two workers

# Python runs sitecustomize at start-up from the first folder on its path that has one: this one makes the
# packages BLOCK_PACKAGES names missing, as when they are not installed, and FRAMEWORKS_GONE's not found at all
# (importlib.util.find_spec gives None for a name whose sys.modules entry is None).
SITECUSTOMIZE = '''
import os, sys

BLOCKED = set(filter(None, os.environ.get("BLOCK_PACKAGES", "").split(",")))


class Blocker:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Blocker)
for gone in filter(None, os.environ.get("FRAMEWORKS_GONE", "").split(",")):
    sys.modules[gone] = None
'''


def compare(*args: str, path: Path | None = None, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """compare.py in a process of its own, with `path` first on PYTHONPATH and `env` set."""
    environment = {**os.environ, **env}
    environment.pop("PYTHONPATH", None)
    if path is not None:
        environment["PYTHONPATH"] = str(path)
    return subprocess.run([sys.executable, COMPARE, *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=TIMEOUT)


def one_line(ran: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one line a refusal is (exit `code`, nothing on stdout, no traceback)."""
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.returncode == code and ran.stdout == "", (ran.returncode, ran.stdout, ran.stderr)
    assert ran.stderr.count("\n") == 1 and ran.stderr.startswith("compare.py: error: "), ran.stderr
    return ran.stderr.strip()


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def a_command_that_imports(package: str, tmp_path: Path) -> list[str]:
    """A command that needs `package`: the program's own imports need pandas, tqdm, numpy and psutil; a data
    file pyarrow, a saved run jsonschema, the classification task scikit-learn."""
    if package == "pyarrow":
        (tmp_path / "data.csv").write_text("a,y\n" + "".join(f"{i},{2 * i}\n" for i in range(10)))
        return ["--data", str(tmp_path / "data.csv"), "--backends", "numpy", "--executor", "inline"]
    if package == "jsonschema":
        (tmp_path / "saved").mkdir()
        (tmp_path / "saved" / "results.json").write_text("{}")
        return ["show", str(tmp_path / "saved")]
    if package == "sklearn":
        return ["--task", "classifier", "--backends", "numpy", "--executor", "inline", "--epochs", "1"]
    return ["--backends", "numpy", "--executor", "inline", "--epochs", "1"]


@pytest.mark.parametrize("package,distribution", [
    ("pandas", "pandas"), ("tqdm", "tqdm"), ("numpy", "numpy"), ("psutil", "psutil"), ("pyarrow", "pyarrow"),
    ("jsonschema", "jsonschema"), ("sklearn", "scikit-learn")])
def test_a_missing_package_is_one_line_naming_it_and_the_install(
        package: str, distribution: str, blocker: Path, tmp_path: Path) -> None:
    ran = compare(*a_command_that_imports(package, tmp_path), path=blocker, BLOCK_PACKAGES=package)
    assert one_line(ran) == (f"compare.py: error: package '{distribution}' is missing (ModuleNotFoundError: No "
                             f"module named '{package}'); install what the suite needs: pip install 'backend-compare' "
                             "(pip install -e . in a checkout)")


@pytest.mark.parametrize("package", ["pandas", "tqdm", "pyarrow", "jsonschema", "sklearn"])
@pytest.mark.parametrize("raises", ["RuntimeError('{package} is broken')",
                                    "ImportError('libbroken.so: cannot open shared object file')"])
def test_a_file_that_hides_a_package_and_fails_is_one_line_naming_it(package: str, raises: str,
                                                                     tmp_path: Path) -> None:
    """Like a file of the user's called tqdm.py in the working directory: the file is named, and the fix."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / f"{package}.py").write_text(f"raise {raises.format(package=package)}\n")
    line = one_line(compare(*a_command_that_imports(package, tmp_path), path=shadow))
    error = raises.format(package=package).replace("('", ": ").removesuffix("')")
    # pandas imports pyarrow as it is imported, and takes an ImportError as pyarrow not being there
    imported_by = " (imported by pandas)" if package == "pyarrow" and "RuntimeError" in raises else ""
    assert line.startswith(f"compare.py: error: package '{package}'{imported_by} fails when it is imported "
                           f"({error}): {shadow / package}.py is not the installed "), line
    assert line.endswith(" but hides it: rename or remove it"), line


def test_a_broken_installed_package_is_one_line_with_its_reinstall(tmp_path: Path) -> None:
    """An installed package (its metadata beside it) whose import fails: reinstall the version installed."""
    site = tmp_path / "site"
    (site / "tqdm").mkdir(parents=True)
    (site / "tqdm" / "__init__.py").write_text("raise OSError('libtqdm.so: undefined symbol: tqdm_init')\n")
    (site / "tqdm-9.9.9.dist-info").mkdir()
    (site / "tqdm-9.9.9.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: tqdm\nVersion: 9.9.9\n")
    (site / "tqdm-9.9.9.dist-info" / "top_level.txt").write_text("tqdm\n")
    line = one_line(compare("--backends", "numpy", "--executor", "inline", path=site))
    assert line == ("compare.py: error: package 'tqdm' fails when it is imported (OSError: libtqdm.so: undefined "
                    "symbol: tqdm_init): reinstall it: pip install --force-reinstall --no-deps 'tqdm==9.9.9'")


def test_a_broken_matplotlib_leaves_the_run_saved_and_names_it(tmp_path: Path) -> None:
    """matplotlib draws the plot alone: the tables are printed and the run is saved, one line says why the
    plot is not there (exit 1, as for any plot that cannot be drawn)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "matplotlib.py").write_text("raise RuntimeError('matplotlib is broken')\n")
    ran = compare("--backends", "numpy", "--executor", "inline", "--epochs", "1", "--out", str(tmp_path / "run"),
                  path=shadow)
    assert ran.returncode == 1 and "\nLosses\n" in ran.stdout and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr == (
        "compare.py: error: the results could not be saved: the plot could not be drawn: package 'matplotlib' "
        f"fails when it is imported (RuntimeError: matplotlib is broken): {shadow / 'matplotlib.py'} is not the "
        f"installed matplotlib {matplotlib_version()} (in {site_packages('matplotlib')}) but hides it: rename or "
        f"remove it; written whole: {tmp_path / 'run'}; nothing else\n")
    assert (tmp_path / "run" / "results.json").exists()


def matplotlib_version() -> str:
    from importlib import metadata

    return metadata.version("matplotlib")


def site_packages(distribution: str) -> str:
    from importlib import metadata

    return os.path.realpath(str(metadata.distribution(distribution).locate_file("")))


@pytest.mark.parametrize("args", [
    ["--backends", "numpy", "--epochs", "1", "--out", "run"],  # a relative path: today's traceback
    ["--backends", "numpy", "--epochs", "1"],  # workers and frameworks started in a folder that is gone
    ["show", "run"],
    ["sweep", "--out", "sweep", "--backends", "numpy", "--lr", "0.1,0.2", "--epochs", "1"],
], ids=["run-out", "run", "show", "sweep"])
def test_a_deleted_working_directory_is_one_line(args: list[str], tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    # The shell enters the folder, removes it and becomes the program: its working directory no longer exists.
    script = f'cd "{gone}" && rmdir "{gone}" && exec "$0" "$@"'
    ran = subprocess.run(["sh", "-c", script, sys.executable, COMPARE, *args], capture_output=True, text=True,
                         timeout=TIMEOUT, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    command = f"compare.py {args[0]}" if args[0] in ("show", "sweep") else "compare.py"
    assert ran.returncode == 2 and ran.stdout == "" and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr == (f"{command}: error: the working directory no longer exists (No such file or directory: "
                          "it was deleted or moved away); cd into a folder that exists and run the command again\n")
    assert not gone.exists()


CRASHES = {"segfault": ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", "signal 11"),
           "os._exit(3)": ("import os\nos._exit(3)\n", "exit 3")}


def crashing_mxnet(tmp_path: Path, how: str) -> Path:
    """A folder whose mxnet package kills its process as it is imported, with the sitecustomize that hides
    the other frameworks (a default run of numpy and mxnet, in seconds)."""
    folder = tmp_path / "site"
    (folder / "mxnet").mkdir(parents=True)
    (folder / "mxnet" / "__init__.py").write_text(CRASHES[how][0])
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


@pytest.mark.parametrize("how", list(CRASHES))
def test_a_framework_that_crashes_at_import_is_a_skip_note_and_the_others_run(how: str, tmp_path: Path) -> None:
    ran = compare("--epochs", "1", path=crashing_mxnet(tmp_path, how), FRAMEWORKS_GONE="torch,jax,tensorflow")
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    assert f"compare.py: skipping backend 'mxnet': crashed at import ({CRASHES[how][1]})\n" in ran.stderr
    losses = ran.stdout.split("\nLosses\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[:2] for line in losses.splitlines()[1:]] == [["numpy", "ok"], ["least-squares", "ok"]]


def test_a_framework_asked_for_that_crashes_at_import_is_one_line_exit_2(tmp_path: Path) -> None:
    ran = compare("--backends", "numpy,mxnet", "--epochs", "1", path=crashing_mxnet(tmp_path, "segfault"))
    assert one_line(ran) == "compare.py: error: backend 'mxnet' crashed at import (signal 11)"


def test_inline_a_framework_that_crashes_at_import_ends_the_process(tmp_path: Path) -> None:
    """What the README says of --executor inline: the crash is the program's own; workers are the remedy."""
    ran = compare("--backends", "numpy,mxnet", "--executor", "inline", "--epochs", "1",
                  path=crashing_mxnet(tmp_path, "segfault"))
    assert ran.returncode == -signal.SIGSEGV and ran.stdout == "", ran.stderr
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "With `--executor inline` a framework that crashes the process as it is imported" in readme
