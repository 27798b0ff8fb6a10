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
    found = _read(path, shapes)
    where = f"init_from {path!r}"
    try:
        _check_names(where, list(found), shapes)
    except _Refused as refused:
        raise ValueError(str(refused)) from None
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


class _Refused(Exception):
    """What the file holds does not fit the model (inside the archive's own error handling)."""


def _check_sizes(where: str, sizes: Mapping[str, int], shapes: Mapping[str, Shape]) -> None:
    for name, shape in shapes.items():
        most = NPY_HEADER_BYTES + WIDEST_ITEM_BYTES * math.prod(shape)
        if sizes.get(name, 0) > most:
            raise _Refused(f"{where}: {name} decompresses to {sizes[name]:,} bytes; the model's {name} of shape "
                           f"{tuple(shape)} needs at most {most:,}")


def _check_names(where: str, names: list[str], shapes: Mapping[str, Shape]) -> None:
    missing = [name for name in shapes if name not in names]
    unknown = [name for name in names if name not in shapes]
    if missing or unknown:
        parts = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"has {', '.join(unknown)}, which the model has not"] if unknown else [])
        raise _Refused(f"{where} {' and '.join(parts)}; the model's parameters are "
                       f"{', '.join(f'{name} {shape}' for name, shape in shapes.items())}")


# An .npy member's header and its widest numbers (complex128): what a member the model's shape needs can hold
NPY_HEADER_BYTES, WIDEST_ITEM_BYTES = 65_536, 16


def _read(path: str, shapes: Mapping[str, Shape]) -> dict[str, object]:
    if path.lower().endswith(".npz"):
        where = f"init_from {path!r}"
        try:
            with np.load(path, allow_pickle=False) as archive:
                # Names and sizes from the archive's directory, before anything is decompressed: a member of
                # a few kB can inflate to gigabytes (a zip bomb), which no parameter of this model needs.
                names = archive.files
                sizes = {info.filename.removesuffix(".npy"): info.file_size for info in archive.zip.infolist()}
                _check_names(where, names, shapes)
                _check_sizes(where, sizes, shapes)
                return {name: archive[name] for name in names}
        except _Refused as refused:
            raise ValueError(str(refused)) from None
        except ARCHIVE_ERRORS as err:  # a damaged archive: a bad CRC or stream, a header that does not parse
            raise ValueError(f"{where} cannot be read as an .npz: {_reason(err)}") from None
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
