"""The README's "What it prints" block is a real run's output, and stays one."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import RunCli

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = "$ python compare.py --task linreg\n"
TIMING_COLUMNS = 3  # seconds, steps_per_s, us_per_step: the only numbers that change from run to run


def comparable(text: str) -> list[list[str]]:
    """Lines as tokens, without what timing decides: the timing cells and the '*' marks (the fastest row
    changes from run to run), and the machine's description."""
    lines, in_timing = [], False
    for line in text.replace(" *", "").splitlines():
        line = re.sub(r" · [^·]+, \d+ CPUs$", "", line)
        if line in ("(* lowest in its column)", ""):
            in_timing = in_timing and line != ""
            continue
        in_timing = in_timing or line == "Losses and timing"
        tokens = line.split()
        lines.append(tokens[:-TIMING_COLUMNS] if in_timing and line != "Losses and timing" else tokens)
    return lines


def test_what_it_prints_is_a_real_run(cli: RunCli) -> None:
    block = README.read_text().split(COMMAND, 1)[1].split("```", 1)[0]
    result = cli("--task", "linreg")
    assert result.code == 0, result.err
    assert comparable(block) == comparable(result.out), "regenerate the README block: python compare.py --task linreg"
