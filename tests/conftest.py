from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend_compare import cli as compare
from backend_compare.backends.base import Backend
from backend_compare.backends.pytest_plugin import load_or_reason

# The `backend` fixture and --backends come from the project's own pytest plugin (backends/pytest_plugin.py,
# registered by the install). `make test` names every backend, so a broken install fails instead of skipping.
_config: pytest.Config | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _config
    _config = config


def load_backend(name: str) -> type[Backend]:
    """The backend class for tests that use several backends at once, by the plugin's rule: skipped
    when unavailable, failed when --backends named it."""
    assert _config is not None
    loaded = load_or_reason(_config, name)
    if isinstance(loaded, str):
        pytest.skip(loaded)
    return loaded


@pytest.fixture(autouse=True)
def signals_left_as_found() -> Iterator[None]:
    """No test may leave this process ignoring Ctrl-C or SIGTERM: every process it starts afterwards would
    inherit that, and a later test's signal would go unheard (entry.main ignores both once it returns, as a
    program about to exit should: the tests call cli.main)."""
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield
    after = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGTERM, before[1])
    assert after == before, f"the test left SIGINT, SIGTERM handled by {after}, not {before}"


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """compare.py in this process, inline unless --executor is given (frameworks imported once per
    session): exit code, stdout, stderr.
    A few end-to-end tests still start a real process where the process itself is under test."""
    def run(*args: str) -> Ran:
        capsys.readouterr()
        argv = list(args)
        commands = ("show", "diff", "explain", "sweep", "report", "port")
        if "--executor" not in argv and (not argv or argv[0] not in commands):
            argv = ["--executor", "inline", *argv]  # frameworks imported once per session, patchable by tests
        code = compare.main(argv, prog="compare.py")
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)
    return run


RunCli = Callable[..., Ran]


def on_path(folder: Path, files: dict[str, str]) -> dict[str, str]:
    """`files` (relative name → text: a package, its dist-info and entry points) written under `folder`; the
    environment in which a child process sees them as installed."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return {**os.environ, "PYTHONPATH": str(folder)}
