from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        if "--executor" not in argv and (not argv or argv[0] not in ("show", "diff", "explain", "sweep", "report")):
            argv = ["--executor", "inline", *argv]  # frameworks imported once per session, patchable by tests
        code = compare.main(argv, prog="compare.py")
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)
    return run


RunCli = Callable[..., Ran]
