"""Starting parameters from a file (--init-from): every canonical name of the model, each of its shape, read
from an .npz of arrays or a JSON object of nested lists, checked whole before anything is made of them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import numpy as np

from ..layers import Shape
from .datafile import ARCHIVE_ERRORS

Params = dict[str, np.ndarray]


def load_initial(path: str, shapes: Mapping[str, Shape]) -> Params:
    """The parameters `path` holds, in float64, exactly the names and shapes of `shapes`; a ValueError in one
    line names the file and what does not fit."""
    found = _read(path)
    where = f"init_from {path!r}"
    missing = [name for name in shapes if name not in found]
    unknown = [name for name in found if name not in shapes]
    if missing or unknown:
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"has {', '.join(unknown)}, which the model has not"] if unknown else [])
        raise ValueError(f"{where} {' and '.join(parts)}; the model's parameters are "
                         f"{', '.join(f'{name} {shape}' for name, shape in shapes.items())}")
    params: Params = {}
    for name, shape in shapes.items():
        try:
            value = np.asarray(found[name], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer past float64
            raise ValueError(f"{where}: {name} must be numbers (nested lists of the shape {shape}); received: "
                             f"{_short(found[name])}") from None
        if value.shape != tuple(shape):
            raise ValueError(f"{where}: {name} has shape {value.shape}; the model's {name} has shape {tuple(shape)}")
        if not np.isfinite(value).all():
            raise ValueError(f"{where}: {name} holds a value that is not finite ({_first_bad(value)}); "
                             f"starting parameters must be finite numbers")
        params[name] = value
    return params


def _read(path: str) -> dict[str, object]:
    if path.lower().endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except ARCHIVE_ERRORS as err:  # a damaged archive: a bad CRC or stream, a header that does not parse
            raise ValueError(f"init_from {path!r} cannot be read as an .npz: {_reason(err)}") from None
    if not path.lower().endswith(".json"):
        raise ValueError(f"init_from must be an .npz or a .json file; received: {path!r}")
    try:
        with open(path, encoding="utf-8") as file:
            found = json.load(file, parse_constant=lambda word: math.nan)  # NaN, Infinity: refused as not finite
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"init_from {path!r} cannot be read: {_reason(err)}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"init_from {path!r} is not JSON: {err.msg} at line {err.lineno}, column {err.colno}") \
            from None
    if not isinstance(found, dict):
        raise ValueError(f"init_from {path!r} must hold a JSON object of parameter names to nested lists; it holds "
                         f"a {type(found).__name__}")
    return found


def _reason(err: BaseException) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err) or type(err).__name__


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_bad(value: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
    return f"{value[index]} at {list(index)}"
