"""Backend registry. Importing this package imports no deep-learning framework."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from ..layers import Activation, Linear, ModelSpec, make_spec, mlp_spec, param_shapes
from ..optimizers.training import OPTIMIZERS
from .base import MODES, Backend
from .errors import error_line
from .losses import LOSSES
from .precision import FULL_DTYPES, NUMERICS

ENTRY_POINTS = "backend_compare.backends"  # the group through which another package adds a backend


@dataclass(frozen=True)
class Registration:
    """Where a backend lives and what it needs: everything else (CLI, plugin, reports, memory estimate)
    reads it from here, so a new backend is its file, one line below and its install extra."""

    module: str  # relative to this package for the built-in ones; "package.module:Class" otherwise
    cls: str
    framework: str | None = None  # its import name and distribution, None when NumPy is all it needs
    install: str | None = None  # the command that installs the framework
    import_bytes: int = 0  # resident memory importing it adds, measured here (benchmarks/run.py)
    first_use_bytes: int = 0  # what its first steps add whatever the data: compiled code, thread pools
    companions: tuple[str, ...] = ()  # other packages whose versions decide its numbers (Keras for TensorFlow)
    # The mode "usual" means for it (its class's usual_mode), known without importing the framework, so that
    # torch:usual and torch:eager are found to be one row before anything starts; None: known once imported.
    usual_mode: str | None = None
    # The numerics it runs (precision.NUMERICS: bfloat16, float16 and the mixed precisions beside float32 and
    # float64), known without importing the framework, as its class's `runs`.
    runs: tuple[str, ...] = FULL_DTYPES


_BUILT_IN = {
    "numpy": Registration(".numpy_backend", "NumpyBackend", usual_mode="eager"),
    "torch": Registration(".torch_backend", "TorchBackend", "torch", "pip install torch==2.13.0", 300 * 2**20,
                          usual_mode="eager", runs=NUMERICS),
    "mxnet": Registration(".mxnet_backend", "MxnetBackend", "mxnet", "pip install mxnet==1.9.1 'numpy<2'",
                          150 * 2**20, usual_mode="compiled"),
    "jax": Registration(".jax_backend", "JaxBackend", "jax", "pip install jax==0.7.1 flax==0.12.0 optax==0.2.8 "
                        "jmp==0.0.4", 250 * 2**20, first_use_bytes=48 * 2**20,  # XLA's compiled steps: about 20 MB
                        companions=("flax", "optax", "jmp"), usual_mode="compiled", runs=NUMERICS),
    "tensorflow": Registration(".tensorflow_backend", "TensorflowBackend", "tensorflow",
                               "pip install tensorflow-cpu==2.21.0 keras==3.15.1", 700 * 2**20,  # 668 MB measured
                               first_use_bytes=48 * 2**20, companions=("keras",),  # its traced steps: 24 MB
                               usual_mode="compiled", runs=NUMERICS),
}


def _installed() -> dict[str, Registration]:
    """Backends other packages register under the entry-point group ENTRY_POINTS (name = "module:Class")."""
    found = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        if entry.name not in _BUILT_IN:
            module, _, cls = entry.value.partition(":")
            found[entry.name] = Registration(module, cls, install=f"reinstall the package providing {entry.name!r}")
    return found


_REGISTRY = {**_BUILT_IN, **_installed()}
BACKENDS = tuple(_REGISTRY)

__all__ = [
    "BACKENDS",
    "LOSSES",
    "MODES",
    "OPTIMIZERS",
    "Activation",
    "Backend",
    "BackendUnavailable",
    "Linear",
    "ModelSpec",
    "Registration",
    "RowName",
    "available_backends",
    "error_line",
    "framework_version",
    "get_backend",
    "install_hint",
    "make_spec",
    "mlp_spec",
    "package_version",
    "param_shapes",
    "registration",
]


class BackendUnavailable(ImportError):
    """The backend's framework is missing or fails to import; the message says how to install it."""


def available_backends() -> list[str]:
    """Backends whose framework is installed (found, not imported: a broken one fails in get_backend)."""
    return [name for name, entry in _REGISTRY.items()
            if entry.framework is None or importlib.util.find_spec(entry.framework) is not None]


def install_hint(name: str) -> str:
    """Why `name` is not among available_backends(), with the command that installs its framework."""
    entry = _REGISTRY[name]
    return f"{entry.framework} is not installed; install it with: {entry.install}"


def get_backend(name: str) -> type[Backend]:
    """The Backend class registered as `name`, importing its framework now."""
    if name not in _REGISTRY:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; received: {name!r}")
    entry = _REGISTRY[name]
    try:
        module = importlib.import_module(entry.module, __name__)
    except Exception as err:  # missing, or failing in any other way while it is imported
        raise BackendUnavailable(f"backend {name!r} is unavailable: {error_line(err)}") from err
    backend: type[Backend] = getattr(module, entry.cls)
    return backend


@dataclass(frozen=True)
class RowName:
    """A row of a comparison, BACKEND[@LABEL][:MODE]: the backend, the environment whose interpreter runs
    it (--python LABEL=PATH; "" for this one) and the mode it runs in ("" for the run's --mode)."""

    backend: str
    label: str
    mode: str

    @classmethod
    def parse(cls, name: str | RowName) -> RowName:
        """`name` parsed (a RowName is returned as it is)."""
        if isinstance(name, RowName):
            return name
        rest, _, mode = name.partition(":")
        backend, _, label = rest.partition("@")
        return cls(backend, label, mode)

    def __str__(self) -> str:
        return self.backend + (f"@{self.label}" if self.label else "") + (f":{self.mode}" if self.mode else "")


def registration(name: str) -> Registration:
    """What the registry knows of backend `name` (or of the backend of a row name, BACKEND@LABEL:MODE)."""
    return _REGISTRY[RowName.parse(name).backend]


def framework_version(name: str) -> str:
    """The installed version of `name`'s framework (NumPy's for the numpy backend), read without importing it."""
    return package_version(registration(name).framework or "numpy")


@cache
def _distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def package_version(package: str) -> str:
    """The version of the distribution that provides import name `package` (tensorflow-cpu provides
    tensorflow), without importing it; "not installed" when none does."""
    for distribution in [package, *_distributions().get(package, [])]:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"
