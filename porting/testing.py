"""assert_same_model: a port kept honest in a project's own tests. A failure says the verdict, where the models
first part and every convention that differs, not a library traceback."""

from __future__ import annotations

from typing import Any

from .check import check_port
from .report import PortReport


def failure_text(report: PortReport) -> str:
    lines = [report.verdict]
    lines += [f"convention: {item.line()}" for item in report.conventions]
    differing = [row for item in report.forward for row in item.rows if not row.agrees][:3]
    lines += [f"{row.kind} A's {row.layer_a!r} / B's {row.layer_b!r}: input {row.input_difference:.3g} apart, output "
              f"{'not compared' if row.output_difference is None else format(row.output_difference, '.3g')} apart "
              f"(tolerance {row.tolerance:.3g})" for row in differing]
    return "\n".join(lines)


def assert_same_model(model_a: Any, model_b: Any, inputs: Any, targets: Any = None, **options: Any) -> PortReport:
    """check_port(model_a, model_b, inputs, targets, **options), failing the test unless the port agrees within
    noise; returns the report. Bad input is a ValueError or TypeError naming the model (A or B)."""
    __tracebackhide__ = True
    try:
        report = check_port(model_a, model_b, inputs, targets, **options)
    except (ValueError, TypeError) as err:
        raise type(err)(str(err)) from None
    if not report.agrees:
        raise AssertionError(failure_text(report)) from None
    return report
