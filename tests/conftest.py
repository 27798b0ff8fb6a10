from __future__ import annotations

import pytest

from backends.base import Backend
from backends.pytest_plugin import load_or_reason

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
