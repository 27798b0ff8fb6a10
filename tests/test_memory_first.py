"""Memory is checked before any work: a run too large for the machine is refused from its settings and the
data file's size, at once, naming the option to change; nothing is made or read whole first."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backend_compare.cli import plan
from backend_compare.comparison import memory
from backend_compare.tasks import datafile
from tests.conftest import RunCli

ROOT = Path(__file__).resolve().parents[1]

# The peak memory of one command, from a parent of its own (RUSAGE_CHILDREN counts only this parent's children).
PEAK = """
import json, resource, subprocess, sys
ran = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=600)
print(json.dumps({"code": ran.returncode, "out": ran.stdout, "err": ran.stderr,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def compare_with_peak(*args: str, cwd: Path = ROOT) -> dict[str, object]:
    probe = subprocess.run([sys.executable, "-c", PEAK, sys.executable, str(ROOT / "compare.py"), *args], cwd=cwd,
                           capture_output=True, text=True, timeout=900)
    assert probe.returncode == 0, probe.stderr
    result: dict[str, object] = json.loads(probe.stdout)
    return result


@pytest.mark.parametrize("command", [[], ["sweep", "--out", "sweep", "--lr", "0.1"]], ids=["run", "sweep"])
def test_a_hundred_million_seeds_are_refused_at_once_naming_seeds(command: list[str], tmp_path: Path) -> None:
    """The seeds were a list of 10^8 numbers (4 GB, seconds) before the check, which then blamed --epochs."""
    ran = compare_with_peak(*command, "--backends", "numpy", "--seeds", "100000000", cwd=tmp_path)
    prog = "compare.py sweep" if command else "compare.py"
    assert ran["code"] == 2 and ran["out"] == "", ran["err"]
    line = str(ran["err"])
    assert line.count("\n") == 1, line
    assert line.startswith(f"{prog}: error: the run does not fit in this machine's memory"), line
    assert line.endswith("most of it is the results of every seed (10.4 TB), set by --seeds\n"), line
    assert float(str(ran["peak_mb"])) < 600, ran  # the program and its imports (~120 MB); the list was 4,000 MB
    assert list(tmp_path.iterdir()) == []


def test_the_loss_of_every_step_names_seeds_or_epochs_by_which_makes_it_large() -> None:
    def largest(epochs: int, seeds: int) -> memory.Part:
        parts = memory.estimate(rows=1000, features=2, spec=plan.model_spec("linear", 2, 1, (), "tanh"),
                                dtype="float32", epochs=epochs, batch_size=10, val_fraction=0.2, backends=["numpy"],
                                optimizer="sgd", seeds=seeds, record=False, row_option="--n-samples",
                                feature_option="--true-w", from_file=False)
        return next(part for part in parts if part.what == "the loss of every step")

    assert largest(10**9, 1).option == "--epochs"
    assert largest(3, 10**6).option == "--seeds"
    assert largest(1000, 1000).option == "--seeds × --epochs"


def sparse_csv(path: Path, size: int = 6 * 2**30) -> Path:
    """A header and a few rows, then holes up to `size` bytes: no disk used, zeros when read."""
    path.write_text("a,y\n1,2\n3,4\n5,6\n7,8\n")
    os.truncate(path, size)
    return path


def test_a_sparse_6_gb_csv_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """It was read whole by the line count (6 GB), then by pyarrow (6.4 GB resident, a minute), then a
    traceback."""
    data = sparse_csv(tmp_path / "holes.csv")
    ran = compare_with_peak("--data", str(data), "--backends", "numpy", cwd=tmp_path)
    assert ran["code"] == 2 and ran["out"] == "", ran["err"]
    assert ran["err"] == (f"compare.py: error: data file '{data}' is not a text CSV file: byte 20 is a NUL byte (a "
                          "binary file, or a sparse file whose holes read as zeros): give --data a CSV of text, or an "
                          ".npz\n")
    assert float(str(ran["peak_mb"])) < 600, ran


def many_lines(path: Path, rows: int) -> Path:
    with path.open("w") as file:
        file.write("a,y\n")
        file.writelines(["1,2\n"] * rows)
    return path


def test_a_large_csv_is_sized_from_windows_without_reading_it_whole(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = many_lines(tmp_path / "many.csv", 20_000_000)  # 80 MB, beyond what is counted line by line
    read: list[int] = []
    real_open = Path.open

    def counted_open(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        opened = real_open(self, mode, *args, **kwargs)  # type: ignore[call-overload]
        if self == data and "b" in mode:
            real_read = opened.read

            def read_counted(size: int = -1) -> bytes:
                chunk: bytes = real_read(size)
                read.append(len(chunk))
                return chunk
            opened.read = read_counted
        return opened

    monkeypatch.setattr(Path, "open", counted_open)
    rows, features = datafile.data_shape(data)
    assert features == 1 and 20_000_001 <= rows <= 20_000_003  # the lines, the header among them
    assert 0 < sum(read) <= datafile.SAMPLES * datafile.SAMPLE_BYTES < data.stat().st_size / 4


def test_a_csv_too_large_for_the_memory_is_refused_naming_data_before_it_is_read(
        tmp_path: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    data = many_lines(tmp_path / "many.csv", 20_000_000)
    monkeypatch.setattr(memory, "available_bytes", lambda: 500 * 2**20)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read before the memory check")

    monkeypatch.setattr(datafile, "_arrow_table", no_reading)
    monkeypatch.setattr(datafile, "_count_lines", no_reading)
    result = cli("--data", str(data), "--backends", "numpy", "--out", str(tmp_path / "run"))
    assert result.code == 2 and result.out == "", result.err
    assert re.fullmatch(r"compare\.py: error: the run does not fit in this machine's memory: it needs about "
                        r"[\d.]+ GB and 500 MB is free; most of it is the data \(1\.24 GB\), set by --data\n",
                        result.err), result.err
    assert not (tmp_path / "run").exists()


def test_a_memory_error_while_the_data_is_read_names_data_not_an_empty_cause(
        tmp_path: Path, cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the estimate cannot foresee (a MemoryError without a message) was 'memory (); use smaller --data or
    --epochs'."""
    data = many_lines(tmp_path / "few.csv", 10)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.setattr(datafile, "_arrow_table", out_of_memory)
    result = cli("--data", str(data), "--backends", "numpy")
    assert (result.code, result.out) == (2, "")
    assert result.err == ("compare.py: error: the run does not fit in this machine's memory (MemoryError); use a "
                          "smaller --data file\n")


def test_a_line_longer_than_pyarrow_parses_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row longer than the largest block pyarrow reads (2 GB) was an UnboundLocalError once both blocks had
    failed. pyarrow is made to say so here: its threaded reader can hang on that error (1 call in ~30, pyarrow
    18.1), which the real case risks but a test must not."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    def straddles(*args: object, **kwargs: object) -> None:
        raise pa.ArrowInvalid("straddling object straddles two block boundaries (try to increase block size?)")

    monkeypatch.setattr(pa_csv, "read_csv", straddles)
    monkeypatch.setattr(datafile, "MAX_BLOCK", 64)
    data = tmp_path / "long.csv"
    data.write_text("a,y\n3,4\n" + "1" * 2**21 + ",2\n")  # beyond the first block (1 MB at least)
    with pytest.raises(ValueError, match=r"long\.csv' has a line longer than 64 bytes, the most pyarrow parses"):
        datafile.load_table(data)
