"""How a table's numbers are written, one rule for the text tables and report.html: each column in the form
that suits what it holds, and a column of values (a parameter, its truth or optimum) with as many digits as
tell its different values apart: two backends' 1.9990103 and 1.9990101 are not both written 1.99901."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

MOST_DIGITS = 17  # enough for any float64 to print back as itself
VALUE_DIGITS = 6  # a value column's significant digits when no two of its values need more


def _fixed(base: str) -> Callable[[float], str] | None:
    """The fixed form of a metric column, whose size is what it tells; None for a value column."""
    if any(word in base for word in ("error", "diff", "loss")):
        return lambda x: f"{x:.3e}"
    if base in ("seconds", "compile_seconds", "us_per_step", "tolerance_ratio", "noise_ratio", "epoch"):
        return lambda x: f"{x:.3g}"
    if "accuracy" in base:
        return lambda x: f"{x:.4f}"
    if base == "steps_per_s":
        return lambda x: f"{x:,.0f}"
    if base in ("epochs", "steps", "step"):
        return lambda x: f"{x:g}"
    return None


def number_format(column: str, digits: int = VALUE_DIGITS) -> Callable[[float], str]:
    """The form of a column's numbers (a `_std` column's as its metric's); a value column to `digits`
    significant digits."""
    return _fixed(column.removesuffix("_std")) or (lambda x: f"{x:.{digits}g}")


def value_digits(column: str, values: Iterable[float]) -> int:
    """The fewest significant digits, VALUE_DIGITS at least, at which a value column's different values print
    differently (VALUE_DIGITS for a metric column, which has its fixed form)."""
    if _fixed(column.removesuffix("_std")) is not None:
        return VALUE_DIGITS
    distinct = {v for v in values if math.isfinite(v)}
    return next((digits for digits in range(VALUE_DIGITS, MOST_DIGITS)
                 if len({f"{v:.{digits}g}" for v in distinct}) == len(distinct)), MOST_DIGITS)


def formatted(column: str, values: Iterable[float]) -> list[str]:
    """The column's numbers as written ("-" for a missing one)."""
    numbers = [float(v) for v in values]
    fmt = number_format(column, value_digits(column, numbers))
    return ["-" if not math.isfinite(v) else fmt(v) for v in numbers]
