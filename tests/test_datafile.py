"""Users' own data files: loaded when well formed, one clear line naming the place when not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend_compare.tasks.datafile import load_xy


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
