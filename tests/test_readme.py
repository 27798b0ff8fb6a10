"""The README's "What it prints" block is a real run's output, and stays one."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import RunCli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = "$ python compare.py --task linreg\n"
TIMING_COLUMNS = 4  # compile_seconds, seconds, steps_per_s, us_per_step: the numbers that change from run to run


def comparable(text: str) -> list[list[str]]:
    """Lines as tokens, without what timing decides: the timing cells and the '*' marks (the fastest row
    changes from run to run), and the machine's description."""
    lines, in_timing = [], False
    for line in text.replace(" *", "").splitlines():
        line = re.sub(r"(^| · )[^·]+, \d+ CPUs$", "", line)
        if line.startswith(("(* lowest in its column", " least-squares is the exact optimum", "(timed while")) \
                or not line:
            in_timing = in_timing and line != ""
            continue
        in_timing = in_timing or line.startswith("Timing (")
        tokens = line.split()
        lines.append(tokens[:-TIMING_COLUMNS] if in_timing and not line.startswith("Timing (") else tokens)
    return lines


def test_what_it_prints_is_a_real_run(cli: RunCli) -> None:
    block = README.read_text().split(COMMAND, 1)[1].split("```", 1)[0]
    result = cli("--task", "linreg")
    assert result.code == 0, result.err
    assert comparable(block) == comparable(result.out), "regenerate the README block: python compare.py --task linreg"


EXPLAIN = "$ python compare.py explain --task linreg --backends numpy,torch,mxnet --dtype float64\n"


def test_the_explain_example_is_a_real_run(cli: RunCli) -> None:
    block = README.read_text().split(EXPLAIN, 1)[1].split("```", 1)[0]
    result = cli(*EXPLAIN.split()[3:])
    assert result.code == 1, result.err  # MXNet's float32 hyper-parameters differ
    # A pair that agrees in float64 differs by float64's rounding, which the CPU's BLAS kernels decide (this
    # machine's AVX paths, not the README's): the line must say it agrees, well within tolerance, whatever the figure.
    agree = re.compile(r"agree \(largest difference ([0-9.e+-]+) of the tolerance\)")
    assert all(float(found) < 1e-3 for found in agree.findall(result.out)), result.out
    assert agree.sub("agree", result.out) == agree.sub("agree", block), "regenerate the README's explain example"


# Files the README's bad-input table names, made as the row describes.
def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _damaged_npz() -> bytes:
    raw = bytearray(_npz_bytes(X=np.arange(20.0).reshape(10, 2), y=np.arange(10.0)))
    raw[raw.index(b"\x00\x00\x00\x00\x00\x00\xf0?")] ^= 0xFF  # a byte of X's data: its CRC no longer holds
    return bytes(raw)


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((10, 3)))
    return buffer.getvalue()


ROWS = "a,b\n" + "".join(f"{i},{2 * i}\n" for i in range(10))
TABLE_FILES: dict[str, Callable[[], bytes]] = {
    "data.png": lambda: ROWS.encode(),
    "run/data.csv": lambda: ROWS.encode(),
    "ragged.csv": lambda: b"a,b\n1,2\n3,4\n\n5,6,7\n",
    "words.csv": lambda: b"a,b\n1,2\n3,4\n5,abc\n",
    "latin1.csv": lambda: "h\u00f6he,gewicht,y\n1,2,3\n4,5,6\n".encode("latin-1"),
    "twice.csv": lambda: b"a,a,y\n1,2,3\n4,5,6\n7,8,9\n",
    "array.npz": _npy_bytes,
    "damaged.npz": _damaged_npz,
    "complex.npz": lambda: _npz_bytes(X=np.ones((10, 2), complex), y=np.ones(10)),
    "folder-with-your-files/notes.txt": lambda: b"mine\n",
    "thesis.pdf": lambda: b"%PDF-1.4 years of work\n",
    "notes/explain.txt": lambda: b"my own notes, under the bundle's name\n",
}


def table_rows() -> list[tuple[str, str]]:
    table = README.read_text().split("| you give | you see (on stderr, exit code 2) |\n|---|---|\n", 1)[1]
    rows = []
    for line in table.split("\n\n", 1)[0].splitlines():
        given, seen = re.fullmatch(r"\| `([^`]*)`[^|]*\| `(.*)` \|", line).groups()  # type: ignore[union-attr]
        rows.append((given, seen))
    return rows


@pytest.mark.parametrize("given,seen", table_rows(), ids=[given for given, _ in table_rows()])
def test_the_bad_input_table_is_what_the_program_says(given: str, seen: str, tmp_path: Path, cli: RunCli,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, make in TABLE_FILES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(make())
    words = shlex.split(given)
    env = dict(os.environ)
    while "=" in words[0]:  # a leading NAME=value sets the environment
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    args = words[1:] if words[0] == "compare.py" else words
    backends = [] if "--backends" in args else ["--backends", "numpy"]
    if args and args[0] in ("explain", "sweep"):  # a command's name comes first
        backends, args = [args[0], *backends], args[1:]
    if env == os.environ:
        monkeypatch.chdir(tmp_path)
        result = cli(*backends, *args)
        code, stdout, stderr = result.code, result.out, result.err
    else:  # a framework reads its environment once, when it is imported: a fresh process
        ran = subprocess.run([sys.executable, str(ROOT / "compare.py"), *backends, *args], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        code, stdout, stderr = ran.returncode, ran.stdout, ran.stderr
    assert code == 2 and stdout == "" and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert re.match(re.escape(seen).replace("…", ".*"), last), f"README says {seen!r}; the program: {last!r}"
