"""pytest plugin, registered through the `pytest11` entry point when backend-compare is installed.

Gives any project's tests, under names of its own (bc_…) and short aliases a project may take for itself:
- `bc_backend` (alias `backend`): a fixture parametrised over the backends (each test runs once per backend);
  a backend whose framework is missing or broken is skipped with the reason, or fails when named in
  --bc-backends;
- `--bc-backends numpy,torch` (alias `--backends`): restricts it;
- `--bc-backend-workers` (alias `--backend-workers`): the fixture then gives a factory with the same call
  signature whose models live in worker processes (backend_compare.in_worker), one per model, closed after
  the test: frameworks that must not share a process can meet in one session;
- `bc_check_backend` (alias `check_backend`): `check_backend(MyBackend)` runs the common checks on a backend
  of your own (backends.check) and names each that fails;
- `bc_backend_parity` (alias `backend_parity`): `backend_parity(fn)` runs fn(BackendClass) on every selected
  backend and compares the NumPy results pairwise with per-dtype tolerances (see
  backends.testing.assert_backends_agree); `allow=["mxnet-adam-beta2"]` widens them for a pair by a named,
  documented allowance. A pair beyond them fails with its verdict, unless fn trained both and the pair lies
  within the rounding noise of that training: it then passes with a ParityWithinNoise warning.

A project's own fixture named like an alias (its conftest's `backend`) replaces the alias and is never
parametrised by this plugin; an option of its own named like an alias (`--backends`) keeps it, and the
plugin's option is then only `--bc-backends`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import BACKENDS, BackendUnavailable, get_backend
from .base import Backend
from .testing import assert_backends_agree

OPTIONS = {  # the plugin's option → its alias, taken only where the project has no option of that name
    "--bc-backends": "--backends",
    "--bc-backend-workers": "--backend-workers",
}


def _add_options(group: Any, names: dict[str, str]) -> None:
    """The options under `names` (each the plugin's own name or its alias), sharing their destinations."""
    if "--bc-backends" in names:
        group.addoption(names["--bc-backends"], dest="bc_backends", default=None, metavar="NAMES",
                        help=f"comma-separated backends for the `bc_backend` fixture, from {','.join(BACKENDS)}, or "
                             "`all` (default: all, skipping those that cannot load; a named backend, or any with "
                             "`all`, fails instead)")
    if "--bc-backend-workers" in names:
        group.addoption(names["--bc-backend-workers"], dest="bc_backend_workers", action="store_true",
                        help="the `bc_backend` fixture makes each model in a worker process of its own")


def pytest_addoption(parser: pytest.Parser) -> None:
    _add_options(parser.getgroup("backend-compare"), {name: name for name in OPTIONS})


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Any:
    """Once the project's own conftests have added their options: the short aliases they left free."""
    result = yield
    # pytest has no public list of the options registered so far: its groups are read here, and only here.
    taken = {name for group in [parser._anonymous, *parser._groups] for option in group.options
             for name in option.names()}
    _add_options(parser.getgroup("backend-compare"),
                 {own: alias for own, alias in OPTIONS.items() if alias not in taken})
    return result


def pytest_configure(config: pytest.Config) -> None:
    selected_backends(config)  # a bad --backends is a usage error at start-up, not mid-collection
    # MXNet 1.9.1's own modules warn about NumPy and distutils APIs: noise that is not the user's.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:mxnet.*")


def selected_backends(config: pytest.Config) -> list[str]:
    option = config.getoption("bc_backends")
    if option is None or option == "all":
        return list(BACKENDS)
    names = [name.strip() for name in option.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise pytest.UsageError(f"--bc-backends must name backends from {', '.join(BACKENDS)}; received: {option!r}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only the plugin's own fixture: a test that uses a project's own `backend` does not ask for bc_backend.
    if "bc_backend" in metafunc.fixturenames:
        metafunc.parametrize("bc_backend", selected_backends(metafunc.config), indirect=True)


def load_or_reason(config: pytest.Config, name: str) -> type[Backend] | str:
    """The backend class, or why it cannot load; a failure instead when --backends named it."""
    try:
        return get_backend(name)
    except BackendUnavailable as err:
        if config.getoption("bc_backends") is not None:
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
def bc_backend(request: pytest.FixtureRequest) -> Iterator[type[Backend] | InWorkers]:
    """The Backend class of one backend (with --bc-backend-workers, a factory of models in workers); the
    test runs once per selected backend."""
    loaded = load_or_reason(request.config, request.param)
    if isinstance(loaded, str):
        pytest.skip(loaded)
    if not request.config.getoption("bc_backend_workers"):
        yield loaded
        return
    factory = InWorkers(request.param)
    yield factory
    for model in factory.made:
        model.close()


@pytest.fixture
def backend(bc_backend: type[Backend] | InWorkers) -> type[Backend] | InWorkers:
    """bc_backend under its short name (a project's own `backend` fixture takes the name instead)."""
    return bc_backend


@pytest.fixture
def bc_check_backend() -> Callable[..., None]:
    """`check_backend(MyBackend, allow=())`: the common checks of backends.check, each failure named."""
    from .check import check_backend

    return check_backend


@pytest.fixture
def check_backend(bc_check_backend: Callable[..., None]) -> Callable[..., None]:
    """bc_check_backend under its short name."""
    return bc_check_backend


@pytest.fixture
def backend_parity(bc_backend_parity: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """bc_backend_parity under its short name."""
    return bc_backend_parity


@pytest.fixture
def bc_backend_parity(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """`backend_parity(fn, dtype="float64", rtol=None, atol=None, allow=())`: fn's results agree on every
    backend; `allow` names known differences from backend_compare.backends.testing.ALLOWANCES."""
    config = request.config
    names = [name for name in selected_backends(config) if not isinstance(load_or_reason(config, name), str)]
    if len(names) < 2:
        pytest.skip(f"backend_parity needs two loadable backends; have {names}")
    return functools.partial(assert_backends_agree, backends=names)
