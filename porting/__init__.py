"""Check a port: a user's own model in one framework against its port in another (check_port), as a report, a
command (compare.py port) and a pytest assertion (assert_same_model)."""

from __future__ import annotations

from .check import check_port
from .report import PortReport
from .testing import assert_same_model

__all__ = ["PortReport", "assert_same_model", "check_port"]
