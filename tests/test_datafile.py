"""Users' own data files: loaded when well formed, one clear line naming the place when not."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend_compare.tasks import get_task
from backend_compare.tasks.datafile import data_shape, load_table, load_xy
from tests.conftest import RunCli


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_last_column_is_the_target(tmp_path: Path) -> None:
    X, y = load_xy(write(tmp_path, "d.csv", "a, b, target\n1, 2, 3\n4, 5, 6\n7, 8, 9\n"))
    np.testing.assert_array_equal(X, [[1, 2], [4, 5], [7, 8]])
    np.testing.assert_array_equal(y, [[3], [6], [9]])


def test_npz_with_X_and_y(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(6.0).reshape(3, 2), y=np.array([1.0, 2.0, 3.0]))
    X, y = load_xy(path)
    assert X.shape == (3, 2) and y.shape == (3, 1)


@pytest.mark.parametrize("name,text,message", [
    ("e.csv", "", "is empty"),
    ("r.csv", "a,b\n1,2\n3,4,5\n", "is ragged: line 3 has 3 fields, the header has 2"),
    ("n.csv", "a,b\n1,2\n3,x\n", "line 3, column 'b': not a number: 'x'"),
    ("nan.csv", "a,b\n1,2\nnan,4\n", "line 3, column 'a': nan is not finite"),
    ("inf.csv", "a,b\n1,2\n3,inf\n", "line 3, column 'b': inf is not finite"),
    ("short.csv", "a,b,c\n1,2,3\n4,5\n", "is ragged: line 3 has 2 fields, the header has 3"),
    ("blank.csv", "a,b\n1,2\n3,\n", "line 3, column 'b': not a number: ''"),
    ("one.csv", "a\n1\n2\n", "at least 2 columns"),
    ("row.csv", "a,b\n1,2\n", "at least 2 rows"),
])
def test_bad_csv_is_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_xy(write(tmp_path, name, text))


def test_missing_and_bad_npz(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_xy(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"not a readable \.npz"):
        load_xy(write(tmp_path, "bad.npz", "not a zip"))
    np.savez(tmp_path / "k.npz", X=np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"missing: \['y'\]"):
        load_xy(tmp_path / "k.npz")
    np.savez(tmp_path / "f.npz", X=np.ones((3, 1)), y=np.array([1.0, np.inf, 2.0]))
    with pytest.raises(ValueError, match=r"y\[1\]: inf is not finite"):
        load_xy(tmp_path / "f.npz")


# ---- generated files: every valid one read exactly, every broken one named at its line or array ----

FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)
CSV_CASES, NPZ_CASES = 150, 150


@st.composite
def tables(draw: st.DrawFn) -> np.ndarray:
    rows, cols = draw(st.integers(2, 6)), draw(st.integers(2, 4))
    return np.array(draw(st.lists(FINITE, min_size=rows * cols, max_size=rows * cols))).reshape(rows, cols)


def csv_text(values: np.ndarray, draw: st.DrawFn) -> tuple[str, list[int]]:
    """The table as CSV written in one of the ways people write it, and each data row's physical line."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines, starts = [", ".join(f"col{i}" for i in range(values.shape[1]))], []
    for row in values:
        while draw(st.booleans()) and draw(st.booleans()):
            lines.append("")  # blank lines are skipped, but they count as lines
        cells = [draw(st.sampled_from(['{!r}', ' {!r}', '"{!r}"', '{:.17g}'])).format(value) for value in row]
        starts.append(len(lines) + 1)
        lines.append(",".join(cells))
    return newline.join(lines) + newline, starts


BREAKS = {  # what is put in one row, and what the error says
    "word": (lambda cells: [*cells[:-1], "abc"], "not a number: 'abc'"),
    "blank": (lambda cells: [*cells[:-1], ""], "not a number: ''"),
    "nan": (lambda cells: [*cells[:-1], "nan"], "nan is not finite"),
    "infinity": (lambda cells: ["-inf", *cells[1:]], "-inf is not finite"),
    "overflow": (lambda cells: ["1e999", *cells[1:]], "inf is not finite"),
    "short": (lambda cells: cells[:-1], "fields, the header has"),
    "long": (lambda cells: [*cells, "1"], "fields, the header has"),
}


@settings(max_examples=CSV_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=tables(), data=st.data())
def test_generated_csv_is_read_exactly(tmp_path: Path, values: np.ndarray, data: st.DataObject) -> None:
    text, _ = csv_text(values, data.draw)
    path = tmp_path / "generated.csv"
    path.write_bytes(text.encode())
    X, y = load_xy(path)
    np.testing.assert_array_equal(np.hstack([X, y]), values)  # bit for bit: parsing is correctly rounded


@settings(max_examples=CSV_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=tables(), data=st.data(), kind=st.sampled_from(sorted(BREAKS)))
def test_generated_broken_csv_names_the_physical_line(tmp_path: Path, values: np.ndarray, data: st.DataObject,
                                                       kind: str) -> None:
    text, starts = csv_text(values, data.draw)
    row = data.draw(st.integers(0, len(values) - 1))
    lines = text.splitlines()
    change, message = BREAKS[kind]
    lines[starts[row] - 1] = ",".join(change(lines[starts[row] - 1].split(",")))
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"line {starts[row]}\b.*{re.escape(message)}|"
                                         rf"{re.escape(message)}.*line {starts[row]}\b") as caught:
        load_xy(path)
    assert "\n" not in str(caught.value)


@st.composite
def npz_arrays(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dtype = draw(st.sampled_from(["int8", "uint16", "int64", "float16", "float32", "float64"]))
    rows, cols = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    X = draw(arrays(dtype, (rows, cols), elements={"allow_nan": False, "allow_infinity": False}))
    y = draw(arrays(dtype, (rows,), elements={"allow_nan": False, "allow_infinity": False}))
    return (X[:, 0] if cols == 1 and draw(st.booleans()) else X), y


@settings(max_examples=NPZ_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays_xy=npz_arrays(), compressed=st.booleans(), data=st.data())
def test_generated_npz_is_read_exactly_or_refused_when_damaged(
        tmp_path: Path, arrays_xy: tuple[np.ndarray, np.ndarray], compressed: bool, data: st.DataObject) -> None:
    X, y = arrays_xy
    path = tmp_path / data.draw(st.sampled_from(["d.npz", "D.NPZ"]))
    with path.open("wb") as file:  # a file object: numpy would add ".npz" to the name "D.NPZ"
        (np.savez_compressed if compressed else np.savez)(file, X=X, y=y)
    expected_X, expected_y = X.reshape(len(X), -1).astype(np.float64), y.reshape(-1, 1).astype(np.float64)
    loaded_X, loaded_y = load_xy(path)
    np.testing.assert_array_equal(loaded_X, expected_X)
    np.testing.assert_array_equal(loaded_y, expected_y)

    raw = bytearray(path.read_bytes())
    damage = data.draw(st.sampled_from(["flip", "truncate"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if damage == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    else:
        del raw[at:]
    path.write_bytes(bytes(raw))
    try:
        loaded_X, loaded_y = load_xy(path)
    except ValueError as err:
        assert "\n" not in str(err)
    else:  # a harmless byte (a timestamp, a comment): then the numbers must be exactly the same
        np.testing.assert_array_equal(loaded_X, expected_X)
        np.testing.assert_array_equal(loaded_y, expected_y)


@pytest.mark.parametrize("array,message", [
    (np.ones((4, 2), complex), "received dtype complex128"),
    (np.ones((4, 2), "m8[s]"), r"received dtype timedelta64\[s\]"),
    (np.ones((4, 2), "M8[D]"), r"received dtype datetime64\[D\]"),
    (np.ones((4, 2), bool), "received dtype bool"),
    (np.array([["a", "b"]] * 4), "received dtype <U1"),
])
def test_npz_of_other_kinds_of_numbers_is_refused(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.savez(tmp_path / "k.npz", X=array, y=np.ones(4))
    with pytest.raises(ValueError, match=f"X must hold real numbers.*{message}"):
        load_xy(tmp_path / "k.npz")


def test_npz_header_that_lies_about_its_size_is_refused_without_decompressing(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 2)})
    with zipfile.ZipFile(tmp_path / "lie.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("X.npy", header.getvalue() + b"\0" * 80)
        archive.writestr("y.npy", header.getvalue())
    with pytest.raises(ValueError, match=r"declares shape \(1000000000, 2\).*but the archive holds"):
        load_xy(tmp_path / "lie.npz")
    assert data_shape  # the same check guards the memory estimate, which reads only the headers
    with pytest.raises(ValueError, match="declares shape"):
        data_shape(tmp_path / "lie.npz")


def test_npy_under_an_npz_name_and_unreadable_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"a single \.npy array \(np\.save\); save X and y with np\.savez"):
        load_xy(tmp_path / "a.npz")
    locked = write(tmp_path, "locked.csv", "a,b\n1,2\n3,4\n")

    def refuse(*args: object, **kwargs: object) -> None:  # as root, chmod 0 would not stop the read
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", refuse)
    for path in (locked, tmp_path / "a.npz"):
        with pytest.raises(ValueError, match="cannot be read: Permission denied"):
            load_xy(path)


def test_csv_rows_are_counted_for_the_memory_check_without_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "a,b,c\n1,2,3\n\n4,5,6\n")
    rows, features = data_shape(path)
    assert features == 2 and rows >= 2


PEOPLE = "height,weight,age,score\n1.7,70,30,5\n1.8,80,40,6\n1.6,60,20,4\n1.75,75,35,5.5\n1.65,65,25,4.5\n1.9,90,50,7\n"


def test_a_csv_without_a_header_keeps_its_first_row(tmp_path: Path) -> None:
    rows = "".join(PEOPLE.splitlines(keepends=True)[1:])
    table = load_table(write(tmp_path, "n.csv", rows))
    assert not table.header and table.X.shape == (6, 3) and table.X[0].tolist() == [1.7, 70, 30]
    assert table.features == ["col1", "col2", "col3"] and table.target == "col4"
    forced = load_table(write(tmp_path, "h.csv", rows), header=True)  # told so: its first line is names
    assert forced.header and forced.X.shape == (5, 3) and forced.features == ["1.7", "70", "30"]
    with pytest.raises(ValueError, match=r"line 1, column 'col1': not a number: 'height'"):
        load_table(write(tmp_path, "p.csv", PEOPLE), header=False)


def test_the_target_is_picked_by_name_or_position(tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PEOPLE)
    by_name = load_table(path, target="weight")
    assert by_name.target == "weight" and by_name.features == ["height", "age", "score"]
    assert by_name.y[:, 0].tolist() == [70, 80, 60, 75, 65, 90] and by_name.X[0].tolist() == [1.7, 30, 5]
    assert load_table(path, target="1").target == "height" and load_table(path, target="-1").target == "score"
    with pytest.raises(ValueError, match=r"--target must name a column .* \(height, weight, age, score\)"):
        load_table(path, target="shoe")
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.ones(3))
    with pytest.raises(ValueError, match="--target applies to a CSV file"):
        load_table(tmp_path / "d.npz", target="1")


def test_user_data_reads_like_user_data(cli: RunCli, tmp_path: Path) -> None:
    path = write(tmp_path, "p.csv", PEOPLE)
    ran = cli("--data", str(path), "--backends", "numpy", "--target", "score", "--standardize", "--epochs", "20",
              "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert [row["parameter"] for row in report["params"] if row["backend"] == "numpy"] == [
        "w[height]", "w[weight]", "w[age]", "b"]
    settings = report["settings"]
    assert settings["columns"] == ["height", "weight", "age"] and settings["target"] == "score"
    mean, std = (np.array(settings["standardized"][key]) for key in ("mean", "std"))
    problem = get_task("data").make_problem(data=str(path), target="score", seed=0, batch_size=4)
    assert np.allclose(mean, problem.X_train.mean(axis=0)) and np.allclose(std, problem.X_train.std(axis=0))
    scaled = get_task("data").make_problem(data=str(path), target="score", seed=0, batch_size=4, standardize=True)
    assert np.allclose(scaled.X_train.mean(axis=0), 0) and np.allclose(scaled.X_train.std(axis=0), 1)
    assert np.allclose(scaled.X_val, (problem.X_val - mean) / std)  # the training split's statistics
    table = cli("--data", str(path), "--backends", "numpy", "--epochs", "2", "--quiet").out
    assert "columns height,weight,age · target score · header True" in table
    wrong = cli("--backends", "numpy", "--target", "score")
    assert wrong.code == 2 and "--target applies only to --task data" in wrong.err


LONG_ROW = """
import os, sys
from pathlib import Path
from backend_compare.tasks import datafile
datafile.MAX_BLOCK = 2**20  # the block grows no further: each read ends in the one-line refusal
os.cpu_count = lambda: 64   # a many-core machine: the first block is small
path = Path(sys.argv[1])
path.write_text("a,y\\n3,4\\n" + "1" * 2**21 + ",2\\n")
for _ in range(60):
    try:
        datafile.load_table(path)
    except ValueError:
        pass
print("done")
"""


def test_a_row_longer_than_a_block_never_hangs_the_reader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """pyarrow's threaded reader hung about once in 30 such reads (60 reads: ~87 % to catch it); the
    reader runs on one thread."""
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", LONG_ROW, str(tmp_path / "long.csv")], capture_output=True,
                         text=True, timeout=240)
    assert ran.stdout.strip() == "done", ran.stderr
