"""Backend registry. Importing this package imports no deep-learning framework."""

from __future__ import annotations

import importlib
import importlib.util

from .base import LOSSES, OPTIMIZERS, Backend, error_line
from .spec import Activation, Linear, ModelSpec, make_spec, mlp_spec, param_shapes

# name -> (module, class, the framework's import name or None, install command)
_REGISTRY = {
    "numpy": (".numpy_backend", "NumpyBackend", None, None),
    "torch": (".torch_backend", "TorchBackend", "torch", "pip install torch==2.13.0"),
    "mxnet": (".mxnet_backend", "MxnetBackend", "mxnet", "pip install mxnet==1.9.1 'numpy<2'"),
}
BACKENDS = tuple(_REGISTRY)

__all__ = [
    "BACKENDS", "LOSSES", "OPTIMIZERS", "Activation", "Backend", "BackendUnavailable", "Linear", "ModelSpec",
    "available_backends", "error_line", "get_backend", "install_hint", "make_spec", "mlp_spec", "param_shapes",
]


class BackendUnavailable(ImportError):
    """The backend's framework is missing or fails to import; the message says how to install it."""


def available_backends() -> list[str]:
    """Backends whose framework is installed (found, not imported: a broken one fails in get_backend)."""
    return [name for name, (_, _, framework, _) in _REGISTRY.items()
            if framework is None or importlib.util.find_spec(framework) is not None]


def install_hint(name: str) -> str:
    """Why `name` is not among available_backends(), with the command that installs its framework."""
    _, _, framework, command = _REGISTRY[name]
    return f"{framework} is not installed; install it with: {command}"


def get_backend(name: str) -> type[Backend]:
    """The Backend class registered as `name`, importing its framework now."""
    if name not in _REGISTRY:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; received: {name!r}")
    module_name, class_name, _, _ = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name, __name__)
    except Exception as err:  # missing, or failing in any other way while it is imported
        raise BackendUnavailable(f"backend {name!r} is unavailable: {error_line(err)}") from err
    backend: type[Backend] = getattr(module, class_name)
    return backend
