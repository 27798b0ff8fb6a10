"""Ctrl-C and SIGTERM at random moments of a real run: during the imports, training, printing or
saving. Whenever the signal lands, the program ends with one line (or finishes), no traceback, and
leaves on disk either the complete previous state or the complete new run, never part of one.

SIGNAL_CASES (environment) sets how many random moments are tried; the default keeps the suite fast.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backend_compare.comparison.saved import is_run_folder, load_run
from tests.processes import interruptible

ROOT = Path(__file__).resolve().parents[1]
CASES = int(os.environ.get("SIGNAL_CASES", "4"))
STARTUP = 0.05  # seconds before compare.py's first line runs: Python's own start, outside any program's reach
RUN = ["compare.py", "--curves", "--quiet"]
EPOCHS = {"numpy": "300", "numpy,torch,mxnet": "20"}  # about a second of training either way
PNG_END = b"IEND\xaeB`\x82"


def start(folder: Path, backends: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *RUN, "--epochs", EPOCHS[backends], "--backends", backends,
                             "--out", str(folder / "run"),
                             "--plot", str(folder / "curves.png")], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, float]]:
    """For a set of backends: a folder holding a finished run and its plot, and how long that run took."""
    made: dict[str, tuple[Path, float]] = {}

    def finished_run(backends: str) -> tuple[Path, float]:
        if backends not in made:
            folder = tmp_path_factory.mktemp(backends.replace(",", "-"))
            began = time.monotonic()
            process = start(folder, backends)
            _, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr
            made[backends] = (folder, time.monotonic() - began)
        return made[backends]

    return finished_run


@pytest.mark.parametrize("case", range(CASES))
def test_a_signal_at_any_moment_leaves_the_previous_run_or_the_new_one_whole(
        previous: Callable[[str], tuple[Path, float]], tmp_path: Path, case: int) -> None:
    draw = random.Random(case)
    backends = "numpy,torch,mxnet" if case % 4 == 3 else "numpy"
    original, duration = previous(backends)
    shutil.copytree(original, tmp_path, dirs_exist_ok=True)
    before = snapshot(tmp_path)
    sent = draw.choice([signal.SIGINT, signal.SIGTERM])
    delay = draw.uniform(STARTUP, duration * 1.1)
    process = start(tmp_path, backends)
    time.sleep(delay)
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=300)
    where = f"{signal.Signals(sent).name} after {delay:.2f} s of {duration:.2f} s"

    assert "Traceback" not in stderr and "Exception ignored" not in stderr, f"{where}:\n{stderr}"
    stopped = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}[sent]
    if process.returncode != 0:  # else it had finished before the signal arrived
        assert process.returncode == stopped[0], f"{where}: exit {process.returncode}\n{stderr}"
        assert stderr.strip().splitlines()[-1].startswith(f"compare.py: {stopped[1]}"), f"{where}:\n{stderr}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["curves.png", "run"], where  # nothing half-made
    after = snapshot(tmp_path)
    if after != before:  # a new run and plot, each complete
        assert is_run_folder(tmp_path / "run") and load_run(str(tmp_path / "run"))["summary"], where
        assert after["curves.png"].endswith(PNG_END), where
        for name in ("run/results.json", "run/loss_curves.png"):
            assert name in after, where


def test_ctrl_c_inside_a_class_definition_is_a_stop_not_a_broken_plot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python wraps what __set_name__ raises in a RuntimeError: Ctrl-C while matplotlib is imported for the plot
    came out as "the plot could not be drawn" (exit 1) instead of a stop (exit 130). Found by the test above."""
    from backend_compare.cli import run as run_command
    from backend_compare.comparison import plot

    class Interrupting:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    def figure_while_a_class_is_made(report: dict) -> None:
        type("Formatter", (), {"offset_string": Interrupting()})

    monkeypatch.setattr(plot, "loss_figure", figure_while_a_class_is_made)
    with pytest.raises(KeyboardInterrupt):
        run_command.drawn({"curves": [{"backend": "numpy"}]}, ["png"])
