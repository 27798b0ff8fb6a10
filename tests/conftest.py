from __future__ import annotations

import pytest

from backends import BackendUnavailable, get_backend
from backends.base import Backend

# The `backend` fixture and --backends come from the project's own pytest plugin (backends/pytest_plugin.py,
# registered by the install). `make test` names every backend, so a broken install fails instead of skipping.
_named_backends: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _named_backends
    _named_backends = config.getoption("backends", default=None)


def load_backend(name: str) -> type[Backend]:
    """The backend class for tests that use several backends at once; skipped when unavailable,
    failed when --backends named it."""
    try:
        return get_backend(name)
    except BackendUnavailable as err:
        if _named_backends is not None:
            pytest.fail(str(err), pytrace=False)
        pytest.skip(str(err))
