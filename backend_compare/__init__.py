"""backend-compare: train the same small model on several deep-learning backends and compare them.

Research code imports from here; the frameworks load only when a backend is asked for:

    from backend_compare import get_backend, mlp_spec
    from backend_compare import in_worker   # the same API, the backend in a worker process
    from backend_compare import check_port  # a user's own model against its port to another framework

The names below load on first use, so `import backend_compare` (and the program's start, which
installs its signal handlers before anything else) costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import (
        BACKENDS,
        LOSSES,
        OPTIMIZERS,
        Activation,
        Backend,
        BackendUnavailable,
        Linear,
        ModelSpec,
        available_backends,
        get_backend,
        install_hint,
        make_spec,
        mlp_spec,
        param_shapes,
    )
    from .comparison.remote import RemoteBackend as in_worker
    from .porting import PortReport, assert_same_model, check_port

__version__ = "0.2.0"
__all__ = [
    "BACKENDS", "LOSSES", "OPTIMIZERS", "Activation", "Backend", "BackendUnavailable", "Linear", "ModelSpec",
    "PortReport", "__version__", "assert_same_model", "available_backends", "check_port", "get_backend", "in_worker",
    "install_hint", "make_spec", "mlp_spec", "param_shapes",
]
PORTING = ("PortReport", "assert_same_model", "check_port")


def __getattr__(name: str) -> Any:
    if name == "in_worker":  # a backend in a worker process, with the Backend API (comparison/remote.py)
        return importlib.import_module(".comparison.remote", __name__).RemoteBackend
    if name in PORTING:  # a user's own model against its port (porting/)
        return getattr(importlib.import_module(".porting", __name__), name)
    if name in __all__:
        return getattr(importlib.import_module(".backends", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
