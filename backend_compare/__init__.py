"""backend-compare: train the same small model on several deep-learning backends and compare them.

Research code imports from here; the frameworks load only when a backend is asked for:

    from backend_compare import get_backend, mlp_spec
"""

from __future__ import annotations

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

__version__ = "0.2.0"
__all__ = [
    "BACKENDS", "LOSSES", "OPTIMIZERS", "Activation", "Backend", "BackendUnavailable", "Linear", "ModelSpec",
    "__version__", "available_backends", "get_backend", "install_hint", "make_spec", "mlp_spec", "param_shapes",
]
