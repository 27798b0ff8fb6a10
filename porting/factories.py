"""A model named on the command line as FILE.py:FACTORY: the file loaded as a module of its own, the factory called;
every failure one line naming the side (A or B) and what went wrong."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _usable_numpy_for_mxnet() -> None:
    # MXNet 1.9.1 uses the alias NumPy 1.24 removed; a user's file that imports it needs it back (as the backend does)
    if "bool" not in np.__dict__:  # hasattr would trigger NumPy 1.2x's FutureWarning
        np.bool = bool  # type: ignore[attr-defined]


def quiet_frameworks(*given: str) -> None:
    """Import TensorFlow the way its backend does (Keras on TensorFlow, its C++ start-up lines filtered) before a
    user's file that names Keras or TensorFlow imports it unfiltered."""
    import contextlib

    texts = []
    for item in given:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            texts.append(Path(item.rpartition(":")[0]).read_text())
    if any("keras" in text or "tensorflow" in text for text in texts):
        with contextlib.suppress(ImportError):
            importlib.import_module("backend_compare.backends.tensorflow_backend")


def load_factory(given: str, side: str) -> Any:
    """The model FILE.py:FACTORY makes; a ValueError names the side, the file or function and the reason."""
    from ..backends.errors import error_line

    path_text, colon, name = given.rpartition(":")
    if not colon or not path_text or not name.isidentifier():
        raise ValueError(f"model {side} must be FILE.py:FACTORY (a function in the file that returns the model); "
                         f"received: {given!r}")
    path = Path(path_text)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"model {side}: {path_text!r} is not a Python file (FILE.py:FACTORY)")
    module_name = f"_backend_compare_port_{side.lower()}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"model {side}: {path_text!r} cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    _usable_numpy_for_mxnet()
    sys.modules[module_name] = module  # dataclasses and pickling look their module up by name
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # a model file that imports a module beside it, as it would run on its own
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except SystemExit as err:
        raise ValueError(f"model {side}: {path_text} called sys.exit({err.code!r}) while loading") from err
    except ImportError as err:
        raise ValueError(f"model {side}: {path_text} needs a package that cannot be imported here: "
                         f"{error_line(err)}") from err
    except Exception as err:
        raise ValueError(f"model {side}: {path_text} failed to load: {error_line(err)}") from err
    factory = getattr(module, name, None)
    if not callable(factory):
        found = sorted(key for key, value in vars(module).items() if inspect.isfunction(value)
                       and not key.startswith("_") and value.__module__ == module_name)
        raise ValueError(f"model {side}: {path_text} has no function {name!r}; its functions: "
                         f"{', '.join(found) or 'none'}")
    try:
        return factory()
    except KeyboardInterrupt:
        raise
    except SystemExit as err:
        raise ValueError(f"model {side}: {path_text}:{name}() called sys.exit({err.code!r})") from err
    except Exception as err:
        raise ValueError(f"model {side}: {path_text}:{name}() failed: {error_line(err)}") from err
