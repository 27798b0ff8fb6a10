"""Every number a fixed set of runs printed when tests/golden/runs.json was recorded prints the same now,
bit for bit: every task, both dtypes, both init modes, inline and in worker processes. Each recording is one
CPU's (tests/golden/runs.py): a run must equal one of them in every number."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any

import pytest

from backend_compare.backends import BACKENDS
from backend_compare.cli import main
from tests.golden import runs

RECORDINGS = [json.loads(path.read_text()) for path in runs.RECORDINGS]


def unlike_every_recording(key: str, now: Any) -> list[str]:
    """[] when `now` is some recording's, bit for bit; else the differences from the closest one."""
    return min((differences(recorded[key], now) for recorded in RECORDINGS), key=len)


def differences(recorded: Any, now: Any, where: str = "") -> list[str]:
    """Every place where `now` is not `recorded` exactly (NaN equal to NaN), as readable lines. What is new
    (a column or a key added since the recording, such as the parity verdicts) is not a difference: every
    recorded number must still be there, the same."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        found = [f"{where}.{key}: recorded only" for key in recorded.keys() - now.keys()]
        for key in recorded.keys() & now.keys():
            found += differences(recorded[key], now[key], f"{where}.{key}")
        return found
    if isinstance(recorded, list) and isinstance(now, list):
        if len(recorded) != len(now):
            return [f"{where}: {len(recorded)} items recorded, {len(now)} now"]
        return [line for i, (a, b) in enumerate(zip(recorded, now, strict=True))
                for line in differences(a, b, f"{where}[{i}]")]
    same = recorded == now or (isinstance(recorded, float) and isinstance(now, float)
                               and math.isnan(recorded) and math.isnan(now))
    return [] if same else [f"{where}: recorded {recorded!r}, now {now!r}"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("golden")


@pytest.mark.skipif(platform.machine() != "x86_64", reason="recorded on x86_64: other CPUs round differently")
@pytest.mark.parametrize("key", runs.keys())
def test_inline_runs_print_the_recorded_numbers(key: str, folder: Path) -> None:
    now = runs.run(main, ["--executor", "inline", *runs.argv(key, folder)])
    found = unlike_every_recording(key, now)
    assert not found, "\n".join(found[:20])


def test_every_framework_runs_in_a_worker_run() -> None:
    assert set().union(*runs.IN_WORKERS.values()) == set(BACKENDS)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="recorded on x86_64: other CPUs round differently")
@pytest.mark.parametrize("key", runs.IN_WORKERS)
def test_worker_runs_print_the_recorded_numbers(key: str, folder: Path) -> None:
    backends = runs.IN_WORKERS[key]
    now = runs.run(main, ["--executor", "process", *runs.argv(key, folder), "--backends", ",".join(backends)])
    recorded = [runs.only(recording[key], backends) for recording in RECORDINGS]
    for each in recorded:
        assert [row["backend"] for row in each["summary"]] == list(backends)  # in the recording, in this order
    found = min((differences(each, now) for each in recorded), key=len)
    assert not found, "\n".join(found[:20])
