"""pytest plugin, registered through the `pytest11` entry point when backend-compare is installed.

Gives any project's tests:
- `backend`: a fixture parametrised over the backends (each test runs once per backend); a backend
  whose framework is missing or broken is skipped with the reason, or fails when named in --backends;
- `--backends numpy,torch`: restricts it;
- `--backend-workers`: the `backend` fixture then gives a factory with the same call signature whose
  models live in worker processes (backend_compare.in_worker), one per model, closed after the test:
  frameworks that must not share a process can meet in one session;
- `check_backend`: `check_backend(MyBackend)` runs the common checks on a backend of your own
  (backends.check) and names each that fails;
- `backend_parity`: `backend_parity(fn)` runs fn(BackendClass) on every selected backend and compares
  the NumPy results pairwise with per-dtype tolerances (see backends.testing.assert_backends_agree);
  `allow=["mxnet-adam-beta2"]` widens them for a pair by a named, documented allowance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import BACKENDS, BackendUnavailable, get_backend
from .base import Backend
from .testing import assert_backends_agree


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("backend-compare").addoption(
        "--backends", default=None, metavar="NAMES",
        help=f"comma-separated backends for the `backend` fixture, from {','.join(BACKENDS)}, or `all` "
             "(default: all, skipping those that cannot load; a named backend, or any with `all`, fails instead)")
    parser.getgroup("backend-compare").addoption(
        "--backend-workers", action="store_true",
        help="the `backend` fixture makes each model in a worker process of its own")


def pytest_configure(config: pytest.Config) -> None:
    selected_backends(config)  # a bad --backends is a usage error at start-up, not mid-collection
    # MXNet 1.9.1's own modules warn about NumPy and distutils APIs: noise that is not the user's.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:mxnet.*")


def selected_backends(config: pytest.Config) -> list[str]:
    option = config.getoption("backends")
    if option is None or option == "all":
        return list(BACKENDS)
    names = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"--backends must name backends from {', '.join(BACKENDS)}; received: {option!r}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", selected_backends(metafunc.config), indirect=True)


def load_or_reason(config: pytest.Config, name: str) -> type[Backend] | str:
    """The backend class, or why it cannot load; a failure instead when --backends named it."""
    try:
        return get_backend(name)
    except BackendUnavailable as err:
        if config.getoption("backends") is not None:
            pytest.fail(str(err), pytrace=False)
        return str(err)


class InWorkers:
    """Called like a Backend class: each model it makes lives in a worker process (closed after the test)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.made: list[Any] = []

    def __call__(self, spec: Any, **options: Any) -> Any:
        from ..comparison.remote import RemoteBackend

        model = RemoteBackend(self.name, spec, **options)
        self.made.append(model)
        return model


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[type[Backend] | InWorkers]:
    """The Backend class of one backend (with --backend-workers, a factory of models in workers); the
    test runs once per selected backend."""
    loaded = load_or_reason(request.config, request.param)
    if isinstance(loaded, str):
        pytest.skip(loaded)
    if not request.config.getoption("backend_workers"):
        yield loaded
        return
    factory = InWorkers(request.param)
    yield factory
    for model in factory.made:
        model.close()


@pytest.fixture(name="check_backend")
def check_backend_fixture() -> Callable[..., None]:
    """`check_backend(MyBackend, allow=())`: the common checks of backends.check, each failure named."""
    from .check import check_backend

    return check_backend


@pytest.fixture
def backend_parity(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """`backend_parity(fn, dtype="float64", rtol=None, atol=None, allow=())`: fn's results agree on every
    backend; `allow` names known differences from backend_compare.backends.testing.ALLOWANCES."""
    config = request.config
    names = [name for name in selected_backends(config) if not isinstance(load_or_reason(config, name), str)]
    if len(names) < 2:
        pytest.skip(f"backend_parity needs two loadable backends; have {names}")
    return functools.partial(assert_backends_agree, backends=names)
