from __future__ import annotations

import os

import pytest

from backends import BACKENDS, BackendUnavailable, get_backend
from backends.base import Backend


def load_backend(name: str) -> type[Backend]:
    """The backend class; skipped with the reason when its framework is missing, but failed in CI,
    where `make test` has installed every framework and a skip would hide a broken install."""
    try:
        return get_backend(name)
    except BackendUnavailable as err:
        if os.environ.get("CI"):
            pytest.fail(str(err))
        pytest.skip(str(err))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> type[Backend]:
    return load_backend(request.param)
