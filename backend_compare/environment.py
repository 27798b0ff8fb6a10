"""The user's environment as the cause of a failure: a package the suite imports (pandas, pyarrow, tqdm,
jsonschema, scikit-learn, matplotlib, ...) that is missing or fails while it is imported, and a working
directory that no longer exists. Each is one line naming what is wrong and how to fix it, exit 2, never a
traceback. Standard library only: it must work when any other package is broken."""

from __future__ import annotations

import os
import sys
from types import TracebackType

# Modules of this project: an error in them is the program's, not the environment's.
OURS = frozenset({"backend_compare", "comparison", "tasks", "backends", "layers", "tests", "benchmarks",
                  "examples", "compare", "__main__"})


def _top(module: str) -> str:
    return module.partition(".")[0]


def _third_party(module: str) -> bool:
    top = _top(module)
    return bool(top) and top not in OURS and top not in sys.stdlib_module_names


def _one_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__


def _frames(tb: TracebackType | None) -> list[tuple[str, str]]:
    """(module, file) of each module body executing in the traceback, outermost first: the imports it was in."""
    found = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "<module>":
            found.append((str(tb.tb_frame.f_globals.get("__name__", "")), code.co_filename))
        tb = tb.tb_next
    return found


def _distribution(package: str) -> tuple[str, str | None, str | None]:
    """The distribution that installs the import name `package` (sklearn: scikit-learn), its version and the
    folder it is installed in (None, None when there is none)."""
    from importlib import metadata

    name = package
    try:
        name = metadata.packages_distributions().get(package, [package])[0]
        found = metadata.distribution(name)
        return name, found.version, os.path.realpath(str(found.locate_file("")))
    except Exception:  # no metadata: a module of its own, or metadata that cannot be read
        return name, None, None


def _fix(package: str, path: str) -> str:
    """How to repair `package` whose module `path` fails at import: remove a file that hides the installed
    package, else reinstall the installed version."""
    name, version, folder = _distribution(package)
    if folder is not None and not os.path.realpath(path).startswith(folder + os.sep):
        return f"{path} is not the installed {name} {version} (in {folder}) but hides it: rename or remove it"
    if version is None:
        return f"rename or remove {path}, or install {name}: pip install '{name}'"
    return f"reinstall it: pip install --force-reinstall --no-deps '{name}=={version}'"


def broken_package(err: BaseException) -> str | None:
    """When `err` was raised because a package the program imports is missing or fails at import: one line
    naming it and the fix. None for any other error (the program's own: its traceback is the report)."""
    if isinstance(err, ModuleNotFoundError) and err.name and _third_party(err.name):
        missing = _top(err.name)
        within = [module for module, _ in _frames(err.__traceback__) if _top(module) == missing]
        if not within:  # not there at all
            name, _, _ = _distribution(missing)
            return (f"package '{name}' is missing ({_one_line(err)}); install what the suite needs: "
                    "pip install 'backend-compare' (pip install -e . in a checkout)")
    third_party = [(module, path) for module, path in _frames(err.__traceback__) if _third_party(module)]
    if isinstance(err, SyntaxError) and err.filename:  # a module that does not compile never starts running
        third_party += [(module, path) for module, path in _modules_of(err.filename) if _third_party(module)]
    if not third_party:
        return None
    culprit, path = third_party[-1]
    outer = _top(third_party[0][0])
    by = f" (imported by {outer})" if outer != _top(culprit) else ""
    return f"package '{_top(culprit)}'{by} fails when it is imported ({_one_line(err)}): {_fix(_top(culprit), path)}"


def _modules_of(filename: str) -> list[tuple[str, str]]:
    """The module a file on sys.path is, as (name, file)."""
    real = os.path.realpath(filename)
    for entry in sys.path:
        root = os.path.realpath(entry or ".")
        if real.startswith(root + os.sep):
            parts = os.path.relpath(real, root).removesuffix(".py").split(os.sep)
            return [(".".join(part for part in parts if part != "__init__"), filename)]
    return []


def missing_working_directory() -> str | None:
    """One line when the working directory has been deleted (or cannot be read): every relative path, and
    the frameworks' own start-up, would fail in ways that do not say why."""
    try:
        os.getcwd()
    except OSError as err:
        return (f"the working directory no longer exists ({err.strerror or err}: it was deleted or moved "
                "away); cd into a folder that exists and run the command again")
    return None
