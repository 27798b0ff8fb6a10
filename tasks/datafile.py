"""Read a user's data set: CSV with a header row (last column the target) or .npz with X and y."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd


def load_xy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """X (n, features) and y (n, 1) as float64; a ValueError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist or is not a file")
    X, y = _load_npz(path) if path.suffix == ".npz" else _load_csv(path)
    if len(X) < 2 or X.shape[1] < 1:
        raise ValueError(f"data file {str(path)!r} needs at least 2 rows and 1 feature; received shape {X.shape}")
    return X, y


def _check_rectangular(path: Path) -> None:
    """pandas pads a short row with blanks; count fields per line to name a ragged one."""
    with path.open(newline="", errors="replace") as file:
        rows = csv.reader(file, skipinitialspace=True)
        header = next(rows, None)
        for line_number, row in enumerate(rows, start=2):
            if row and len(row) != len(header or []):
                raise ValueError(f"data file {str(path)!r} is ragged: line {line_number} has {len(row)} "
                                 f"fields, the header has {len(header or [])}")


def _load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    _check_rectangular(path)
    try:
        table = pd.read_csv(path, skipinitialspace=True, keep_default_na=False)  # a blank stays '' to be named
    except pd.errors.EmptyDataError:
        raise ValueError(f"data file {str(path)!r} is empty") from None
    except pd.errors.ParserError as err:  # ragged rows: pandas names the line
        raise ValueError(f"data file {str(path)!r} is ragged: {str(err).split('C error: ')[-1].strip()}") from None
    except UnicodeDecodeError:
        raise ValueError(f"data file {str(path)!r} is not a text CSV file") from None
    if table.shape[1] < 2:
        raise ValueError(f"data file {str(path)!r} needs a header and at least 2 columns (features, then the "
                         f"target); received {table.shape[1]} column(s)")
    # Line numbers as a user sees them: the header is line 1.
    numeric = table.apply(pd.to_numeric, errors="coerce")
    written_nan = table.apply(lambda column: column.astype(str).str.strip().str.lower() == "nan")
    bad = numeric.isna() & ~written_nan
    if bad.any().any():
        row, column = _first(bad)
        raise ValueError(f"data file {str(path)!r} line {row + 2}, column {column!r}: "
                         f"not a number: {table.iloc[row][column]!r}")
    values = numeric.to_numpy(dtype=np.float64)
    _check_finite(path, values, lambda row, col: f"line {row + 2}, column {table.columns[col]!r}")
    return values[:, :-1], values[:, -1:]


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("X", "y") if key in archive.files}
    except (OSError, EOFError, ValueError) as err:  # what numpy raises for a file that is not an archive
        raise ValueError(f"data file {str(path)!r} is not a readable .npz archive: {err}") from None
    missing = {"X", "y"} - set(arrays)
    if missing:
        raise ValueError(f"data file {str(path)!r} must hold arrays 'X' and 'y'; missing: {sorted(missing)}")
    X, y = arrays["X"], arrays["y"]
    if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"data file {str(path)!r}: X and y must be numeric; received {X.dtype} and {y.dtype}")
    X = X.reshape(-1, 1) if X.ndim == 1 else X
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    if X.ndim != 2 or y.shape != (len(X), 1):
        raise ValueError(f"data file {str(path)!r}: X must be (n, features) and y (n,) or (n, 1); "
                         f"received {X.shape} and {y.shape}")
    X, y = X.astype(np.float64), y.astype(np.float64)
    _check_finite(path, X, lambda row, col: f"X[{row}, {col}]")
    _check_finite(path, y, lambda row, col: f"y[{row}]")
    return X, y


def _first(mask: pd.DataFrame) -> tuple[int, str]:
    row = int(np.argmax(mask.to_numpy().any(axis=1)))
    return row, str(mask.columns[int(np.argmax(mask.to_numpy()[row]))])


def _check_finite(path: Path, values: np.ndarray, where: object) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"data file {str(path)!r} {where(row, col)}: {values[row, col]} is not finite")  # type: ignore[operator]
