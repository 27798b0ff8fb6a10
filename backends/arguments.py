"""The checks every value crossing the Backend boundary passes: numbers, arrays, choices, each refused with a
one-line ValueError naming the argument, the value received and what is allowed."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .precision import finfo


def scalar(value: Any) -> Any:
    """NumPy scalars and 0-d arrays as the Python number they hold; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value.item() if isinstance(value, np.generic) else value


def finite(name: str, value: Any, *, zero_allowed: bool) -> float:
    value = scalar(value)
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or value < 0 or (value == 0 and not zero_allowed):
        raise ValueError(f"{name} must be a finite number {'>=' if zero_allowed else '>'} 0; received: {value!r}")
    return float(value)


def representable(name: str, value: float, dtype: str | np.dtype) -> None:
    """A hyper-parameter that the model's dtype turns into 0 or infinity would train something else, silently."""
    with np.errstate(over="ignore"):
        held = float(np.asarray(value, dtype=dtype))
    if (value != 0 and held == 0) or not math.isfinite(held):
        info = finfo(dtype)
        raise ValueError(f"{name} must be representable in {dtype} (from {float(info.smallest_subnormal):.3g} to "
                         f"{float(info.max):.3g}); received: {value!r}, which {dtype} holds as {held}")


def flag(name: str, value: Any) -> bool:
    value = scalar(value)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; received: {value!r}")
    return value


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    value = scalar(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}; received: {value!r}")
    return value


def an_array(name: str, value: Any) -> None:
    """Data cross the boundary as NumPy arrays: a list would be converted with a dtype of NumPy's choosing."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be a NumPy array; received {type(value).__name__} (np.asarray makes one)")


def real_array(name: str, value: Any) -> np.ndarray:
    """`value` as an array of real numbers, all finite; a ValueError names what is wrong."""
    array = np.asarray(value)
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.dtype == np.bool_ or not real:
        raise ValueError(f"{name} must hold real numbers; received dtype {array.dtype}")
    check_finite(name, array)
    return array


def check_finite(name: str, array: np.ndarray, dtype: str | None = None) -> None:
    """Every element finite; with `dtype`, the array was just cast to it, so an infinity is an overflow."""
    flat = array.reshape(-1)
    step = 2**22  # checked in pieces: no mask the size of the data
    for start in range(0, flat.size, step):
        if not np.isfinite(flat[start : start + step]).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            if dtype is None:
                raise ValueError(f"{name} must be finite; received {array[where]} at index {where}")
            raise ValueError(f"{name} must fit in {dtype} (largest magnitude {np.finfo(dtype).max:.3g}); "
                             f"received a value beyond it at index {where}")


def as_dtype(name: str, array: np.ndarray, dtype: str) -> np.ndarray:
    """A C-contiguous, writable array of `dtype` (a copy when needed), every value still finite in it."""
    with np.errstate(over="ignore"):  # an overflow is reported below, by name
        cast = np.ascontiguousarray(array, dtype=dtype)
    if cast is array and not cast.flags.writeable:
        cast = cast.copy()  # torch.from_numpy warns on a read-only array
    if array.dtype.itemsize > cast.dtype.itemsize:  # narrowed: a value may have overflowed to ±inf
        check_finite(name, cast, dtype)
    return cast


def in_order(order: np.ndarray) -> bool:
    """order == 0, 1, 2, …, checked in pieces: no second array the size of the order."""
    step = 2**20
    return all(np.array_equal(order[start : start + step], np.arange(start, min(start + step, order.size)))
               for start in range(0, order.size, step))


def unshared(array: np.ndarray, given: Any) -> np.ndarray:
    """`array`, copied when it is (a view of) the caller's `given` array."""
    return array.copy() if np.may_share_memory(array, given) else array


def weak(value: Any) -> Callable[[], Any]:
    """A weak reference to an array (None once it is gone), or to nothing for what cannot be weakly held."""
    try:
        return weakref.ref(value)
    except TypeError:
        return lambda: None


def choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; received: {value!r}")
    return value


def named_arrays(what: str, given: Any, shapes: dict[str, tuple[int, ...]], dtype: str) -> dict[str, np.ndarray]:
    """`given` (params or state) checked against the canonical names and shapes, as arrays of `dtype`."""
    missing = sorted(set(shapes) - set(given))
    unknown = sorted(set(given) - set(shapes))
    if missing or unknown:
        raise ValueError(f"{what} must have exactly the keys {sorted(shapes)}; missing: {missing}, "
                         f"unexpected: {unknown}")
    checked = {}
    for name, shape in shapes.items():
        value = real_array(f"{what}[{name!r}]", given[name])
        if value.shape != shape:
            raise ValueError(f"{what}[{name!r}] must have shape {shape}; received shape {value.shape}")
        checked[name] = as_dtype(f"{what}[{name!r}]", value, dtype)
    return checked
