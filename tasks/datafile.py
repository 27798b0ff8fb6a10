"""Read a user's data set: CSV with a header row (last column the target) or .npz with X and y.

Every file is checked before it is trusted: an .npz by its array headers before anything is
decompressed, a CSV by pyarrow's strict, vectorised parser; a problem is one ValueError naming the
file and the place (CSV: the physical line, as an editor numbers it).
"""

from __future__ import annotations

import csv
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
NUMERIC_KINDS = "iuf"  # signed, unsigned, float; bool, complex, timedelta, datetime and text are refused
COUNT_CHUNK = 16 * 2**20  # bytes read at a time when counting a CSV's lines
COUNT_BYTES = 64 * 2**20  # a CSV up to this size has its lines counted (a few hundredths of a second);
SAMPLES = 16  # a larger one's are estimated from this many windows spread over it,
SAMPLE_BYTES = 2**20  # each of this size: 16 MB read, however large the file
MAX_BLOCK = 2**31 - 1  # the largest block pyarrow reads, and so the longest line it can parse
# What zipfile and numpy raise for a damaged archive: a bad CRC or stream, a compression method or
# encryption flag from a flipped bit, a header that does not parse.
ARCHIVE_ERRORS = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)


def _name(path: Path) -> str:
    return f"data file {str(path)!r}"


def load_xy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """X (n, features) and y (n, 1) as float64; a ValueError names the file and what is wrong."""
    table = load_table(path)
    return table.X, table.y


@dataclass
class Table:
    X: np.ndarray  # (n, features), float64
    y: np.ndarray  # (n, 1)
    features: list[str]  # the feature columns' names: the CSV's header, or col1, col2, ... without one
    target: str
    header: bool  # whether the file's first line was a header
    classes: list[str] | None = None  # with labels=True: the class names, y holding their indices


def as_classes(path: Path, values: np.ndarray, where: Callable[[int], str] = lambda row: f"y[{row}]"
               ) -> tuple[np.ndarray, list[str]]:
    """Class labels (text or numbers) as indices 0…K−1 of their sorted distinct values (numbers in numeric
    order), and those values as names; `where` names a row in a message."""
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{_name(path)} {where(row)}: class labels must be whole numbers or text; "
                             f"received {values[row]}")
        values = values.astype(np.int64)
    if values.dtype.kind in "iu":
        names, indices = np.unique(values, return_inverse=True)
        return indices.astype(np.float64)[:, None], [str(name) for name in names.tolist()]
    text = np.array([str(value).strip() for value in values])
    if (text == "").any():
        raise ValueError(f"{_name(path)} {where(int(np.argmax(text == '')))}: the class label is empty")
    if all(_is_number(label) for label in text):  # "1", "2", "10": numeric order, written as given
        return as_classes(path, np.array([float(label) for label in text]), where)
    names, indices = np.unique(text, return_inverse=True)
    return indices.astype(np.float64)[:, None], names.tolist()


def load_table(path: str | Path, target: str | None = None, header: bool | None = None,
               labels: bool = False) -> Table:
    """The file's features and target (a CSV's column named or numbered by `target`, default the last;
    `header` None: a first line that is not all numbers is the header). With `labels`, the target holds
    class labels (text or whole numbers), returned as indices with the class names. ValueError names what
    is wrong."""
    path = _existing(path)
    if _is_npz(path) and (target is not None or header is not None):
        given = "--target" if target is not None else "--header/--no-header"
        raise ValueError(f"{given} applies to a CSV file; {_name(path)} is an .npz, whose arrays are X and y")
    try:
        if _is_npz(path):
            X, y = _load_npz(path)
            table = Table(X, y, [f"x{j + 1}" for j in range(X.shape[1])], "y", header=False)
            if labels:
                table.y, table.classes = as_classes(path, y)
        else:
            table = _load_csv(path, target, header, labels)
    except OSError as err:  # unreadable: permissions, a disk error
        raise ValueError(f"{_name(path)} cannot be read: {err.strerror or err}") from None
    if len(table.X) < 2 or table.X.shape[1] < 1:
        raise ValueError(f"{_name(path)} needs at least 2 rows and 1 feature; received shape {table.X.shape}")
    return table


def data_shape(path: str | Path) -> tuple[int, int]:
    """(rows, features) of the file, without reading its values: from an .npz's array headers, or for a
    CSV its header and its lines: counted up to COUNT_BYTES (an upper bound on the rows), estimated beyond
    from the densest of SAMPLES windows, so that the memory check reads 16 MB of a file of any size."""
    path = _existing(path)
    try:
        if _is_npz(path):
            shapes = _npz_shapes(path)
            return shapes["X"][0], shapes["X"][1]
        features = len(_csv_header(path)) - 1
        size = path.stat().st_size
        return (_count_lines(path) if size <= COUNT_BYTES else _estimate_lines(path, size)), features
    except OSError as err:
        raise ValueError(f"{_name(path)} cannot be read: {err.strerror or err}") from None


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{_name(path)} does not exist or is not a file")
    return path


def _is_npz(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


# ---- .npz ----

def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, RuntimeError):
        with path.open("rb") as file:
            npy = file.read(len(NPY_MAGIC)) == NPY_MAGIC
        what = "a single .npy array (np.save); save X and y with np.savez" if npy else "not a zip archive"
        raise ValueError(f"{_name(path)} is not a readable .npz archive: it is {what}") from None


def _npz_shapes(path: Path, kind: str = "table") -> dict[str, tuple[int, ...]]:
    """X's and y's shapes, (n, features) (images: (n, C, H, W) or (n, C, L); sequences: (n, steps, features)) and
    (n, 1), from their headers; dtypes and sizes checked."""
    with _open_zip(path) as archive:
        return {key: shape for key, (shape, _) in _npz_headers(path, archive, kind).items()}


def image_shape(path: str | Path) -> tuple[int, ...]:
    """The shape of an .npz's images X, (n, channels, height, width) or (n, channels, length), from its
    header: without reading the values."""
    path = _existing(path)
    if not _is_npz(path):
        raise ValueError(f"{_name(path)} must be an .npz with X (n, channels, height, width) and y (n,) labels")
    try:
        return _npz_shapes(path, "images")["X"]
    except OSError as err:
        raise ValueError(f"{_name(path)} cannot be read: {err.strerror or err}") from None


def sequence_shape(path: str | Path) -> tuple[int, ...]:
    """The shape of an .npz's sequences X, (n, steps, features), from its header: without reading the values."""
    path = _existing(path)
    if not _is_npz(path):
        raise ValueError(f"{_name(path)} must be an .npz with X (n, steps, features) and y (n,) targets")
    try:
        return _npz_shapes(path, "sequences")["X"]
    except OSError as err:
        raise ValueError(f"{_name(path)} cannot be read: {err.strerror or err}") from None


def load_sequences(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Sequences X (n, steps, features) and targets y (n, 1), as float64."""
    sequence_shape(path)
    try:
        return _load_npz(Path(path), "sequences")
    except OSError as err:
        raise ValueError(f"{_name(Path(path))} cannot be read: {err.strerror or err}") from None


def load_images(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images X (n, C, H, W) or (n, C, L) as float64, their class indices (n, 1) and the class names."""
    image_shape(path)
    path = Path(path)
    try:
        X, y = _load_npz(path, "images")
    except OSError as err:
        raise ValueError(f"{_name(path)} cannot be read: {err.strerror or err}") from None
    indices, classes = as_classes(path, y)
    return X, indices, classes


def _npz_headers(path: Path, archive: zipfile.ZipFile,
                 kind: str = "table") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    members = {info.filename: info for info in archive.infolist()}
    missing = [key for key in ("X", "y") if f"{key}.npy" not in members]
    if missing:
        raise ValueError(f"{_name(path)} must hold arrays 'X' and 'y'; missing: {missing}")
    headers = {}
    for key in ("X", "y"):
        info = members[f"{key}.npy"]
        try:
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)  # 2.0 and 3.0 differ in encoding only
                shape, _, dtype = read_header(member)
                header_bytes = member.tell()
        except ARCHIVE_ERRORS as err:
            raise ValueError(f"{_name(path)}: {key} is not a readable .npy array: {err}") from None
        if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
            raise ValueError(f"{_name(path)}: {key} must hold real numbers (integers or floats); "
                             f"received dtype {dtype}")
        declared = header_bytes + int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if declared != info.file_size:  # a header that lies about the size is not decompressed to find out
            raise ValueError(f"{_name(path)}: {key}'s header declares shape {shape} of {dtype} "
                             f"({declared:,} bytes with the header) but the archive holds {info.file_size:,}")
        headers[key] = (shape, dtype)
    X_shape, y_shape = headers["X"][0], headers["y"][0]
    n = X_shape[0] if X_shape else 0
    if kind == "sequences":
        if len(X_shape) != 3 or y_shape not in ((n,), (n, 1)) or not n or 0 in X_shape:
            raise ValueError(f"{_name(path)}: X must be sequences of equal length (n, steps, features) and y (n,) or "
                             f"(n, 1) targets; received X {X_shape} and y {y_shape}")
        return {"X": (X_shape, headers["X"][1]), "y": ((n, 1), headers["y"][1])}
    if kind == "images":
        if len(X_shape) not in (3, 4) or y_shape not in ((n,), (n, 1)) or not n:
            raise ValueError(f"{_name(path)}: X must be images (n, channels, height, width) or sequences (n, "
                             f"channels, length), and y (n,) or (n, 1) class labels; received X {X_shape} and "
                             f"y {y_shape}")
        return {"X": (X_shape, headers["X"][1]), "y": ((n, 1), headers["y"][1])}
    X_shape = (X_shape[0], 1) if len(X_shape) == 1 else X_shape
    if len(X_shape) != 2 or y_shape not in ((n,), (n, 1)):
        raise ValueError(f"{_name(path)}: X must be (n, features) and y (n,) or (n, 1); "
                         f"received {headers['X'][0]} and {y_shape}")
    return {"X": (X_shape, headers["X"][1]), "y": ((n, 1), headers["y"][1])}


def _load_npz(path: Path, kind: str = "table") -> tuple[np.ndarray, np.ndarray]:
    arrays = {}
    with _open_zip(path) as archive:
        for key, (shape, _) in _npz_headers(path, archive, kind).items():
            try:  # the zip's CRC is checked when the member has been read to its end
                with archive.open(f"{key}.npy") as member:
                    array = np.lib.format.read_array(member, allow_pickle=False)
                    member.read()
            except ARCHIVE_ERRORS as err:
                raise ValueError(f"{_name(path)}: {key} is damaged: {err}") from None
            arrays[key] = array.reshape(shape).astype(np.float64)
    _check_finite(path, arrays["X"], "X")
    _check_finite(path, arrays["y"], "y")
    return arrays["X"], arrays["y"]


# ---- CSV ----

def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(physical line where it starts, fields) for every non-blank record after the header."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        reader = csv.reader(file, skipinitialspace=True)
        try:
            started = reader.line_num + 1
            for fields in reader:
                if fields:
                    yield started, fields
                started = reader.line_num + 1
        except csv.Error as err:
            raise ValueError(f"{_name(path)} line {reader.line_num}: not a text CSV file ({err})") from None


def _csv_header(path: Path) -> list[str]:
    for line, header in _records(path):
        if len(header) < 2:
            raise ValueError(f"{_name(path)} needs at least 2 columns (features and a target); received "
                             f"{len(header)} column(s)")
        if any("\ufffd" in field for field in header):  # read with errors="replace": the bytes were not UTF-8
            raise ValueError(f"{_name(path)} line {line} is not UTF-8 text (another encoding, such as Latin-1?): "
                             "save the file as UTF-8")
        return header
    raise ValueError(f"{_name(path)} is empty")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _position(target: str | None, count: int) -> int | None:
    """The column `target` gives by position (1 the first, -1 the last; None: the last), or None when it
    is no position among `count` columns."""
    if target is None:
        return count - 1
    if re.fullmatch(r"-?\d+", target.strip()) and 1 <= abs(int(target)) <= count:
        return int(target) - 1 if int(target) > 0 else count + int(target)
    return None


def _column(path: Path, names: list[str], target: str | None) -> int:
    """The target column: a name of the header, else a position (1 the first, -1 the last)."""
    if target is not None and target in names:
        return names.index(target)
    position = _position(target, len(names))
    if position is not None:
        return position
    shown = ", ".join(names) if len(names) <= 12 else ", ".join(names[:10]) + f", … ({len(names)} columns)"
    raise ValueError(f"--target must name a column of {_name(path)} ({shown}) or give its position "
                     f"(1 to {len(names)}, or -1 for the last); received: {target!r}")


def _count_lines(path: Path) -> int:
    lines = 1
    with path.open("rb") as file:
        while chunk := file.read(COUNT_CHUNK):
            lines += chunk.count(b"\n")
    return lines


def _estimate_lines(path: Path, size: int) -> int:
    """A large CSV's lines, from windows spread evenly over it: the densest window's lines per byte times
    the size. A NUL byte is no text: a binary file, or a sparse one (its holes read as zeros) is refused
    here, before the memory check would let it be read whole."""
    densest = 0.0
    with path.open("rb") as file:
        for index in range(SAMPLES):
            start = index * (size - SAMPLE_BYTES) // (SAMPLES - 1)
            file.seek(start)
            window = file.read(SAMPLE_BYTES)
            if (nul := window.find(b"\0")) >= 0:
                raise ValueError(f"{_name(path)} is not a text CSV file: byte {start + nul:,} is a NUL byte (a "
                                 "binary file, or a sparse file whose holes read as zeros): give --data a CSV of "
                                 "text, or an .npz")
            densest = max(densest, window.count(b"\n") / max(len(window), 1))
    return 1 + math.ceil(size * densest)


def _load_csv(path: Path, target: str | None = None, header: bool | None = None, labels: bool = False) -> Table:
    first = _csv_header(path)
    # A class label may be text: a first line of numbers but for the label's field is no header either (a
    # target given by name means a header).
    label_field = _position(target, len(first)) if labels else None
    features_only = [field for j, field in enumerate(first) if j != label_field]
    has_header = header if header is not None else not all(_is_number(field) for field in features_only)
    names = [field.strip() for field in first] if has_header else [f"col{j + 1}" for j in range(len(first))]
    twice = next((name for j, name in enumerate(names) if name in names[:j]), None)
    if twice is not None:  # which one would --target, or the reports, mean?
        raise ValueError(f"{_name(path)} names column {twice!r} more than once (columns "
                         f"{', '.join(str(j + 1) for j, name in enumerate(names) if name == twice)}): give each "
                         "column its own name")
    column = _column(path, names, target)
    table = _arrow_table(path, first if has_header else names, has_header, text_column=column if labels else None)
    if table.num_rows == 0:
        raise ValueError(f"{_name(path)} needs at least 2 rows and 1 feature; received a header only")
    classes, y = None, None
    if labels:
        def line_of(row: int) -> str:
            line = next(line for index, (line, _) in enumerate(_records(path)) if index == row + has_header)
            return f"line {line}, column {names[column]!r}"

        y, classes = as_classes(path, table.column(column).combine_chunks().to_numpy(zero_copy_only=False), line_of)
        table = table.remove_column(column)
    columns = [name for j, name in enumerate(names) if j != column] if labels else names
    values = np.column_stack([chunked.combine_chunks().to_numpy() for chunked in table.columns])
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        line = next(line for index, (line, _) in enumerate(_records(path)) if index == row + has_header)
        raise ValueError(f"{_name(path)} line {line}, column {columns[col]!r}: {values[row, col]} is not finite")
    if y is not None:  # labels: the target column was taken out
        return Table(values, y, columns, names[column], has_header, classes)
    features = [j for j in range(values.shape[1]) if j != column]
    return Table(values[:, features], values[:, column:column + 1], [names[j] for j in features], names[column],
                 has_header)


def _arrow_table(path: Path, header: list[str], has_header: bool = True, text_column: int | None = None) -> Any:
    """Every column parsed as float64 by pyarrow (correctly rounded, like Python's float), but `text_column`
    read as text; without a header line, the columns get the names `header` gives."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    # A few large blocks: pyarrow's cost grows with blocks × columns, and a wide file has many columns.
    size = path.stat().st_size
    block = min(max(2**20, size // (os.cpu_count() or 1) + 1), 2**30)
    # pyarrow keeps the names as written (with any leading blanks): both spellings get float64.
    names = header + (next(csv.reader([_first_line(path)]), []) if has_header else [])
    types = dict.fromkeys(names, pa.float64())
    if text_column is not None:  # both spellings of its name, as above
        types.update(dict.fromkeys({header[text_column], names[len(header) + text_column] if has_header
                                    else header[text_column]}, pa.string()))
    convert = pa_csv.ConvertOptions(column_types=types, null_values=[],
                                    strings_can_be_null=False, quoted_strings_can_be_null=False)
    named = {} if has_header else {"column_names": header}
    for block_size in (block, min(size + 1, MAX_BLOCK)):  # a row longer than a block needs a bigger one
        try:
            # One thread: pyarrow 18's threaded reader hung about once in 30 reads of a file with a row longer
            # than its block (instead of raising the "straddling" error handled here); single-threaded, not in
            # 300. It costs ~1.5x on a 95 MB CSV (0.52 s against 0.33-0.51 s).
            table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(block_size=block_size, use_threads=False,
                                                                          **named), convert_options=convert)
            break
        except pa.ArrowInvalid as err:
            if "straddl" not in str(err) or block_size > size:
                _diagnose(path, header, str(err), has_header)
    else:  # even the largest block did not hold a row
        raise ValueError(f"{_name(path)} has a line longer than {MAX_BLOCK:,} bytes, the most pyarrow parses in "
                         "one piece: a CSV's rows are far shorter; is it the file you meant?")
    if not all(pa.types.is_float64(field.type) or j == text_column for j, field in enumerate(table.schema)):
        _diagnose(path, header, "a column was not read as numbers", has_header)
    return table


def _first_line(path: Path) -> str:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        return file.readline()


# The threaded reader says "column #1: CSV conversion …", the single-threaded one "column #1: Row #3: CSV …".
ARROW_CONVERSION = re.compile(r"column #(\d+): (?:Row #\d+: )?CSV conversion error to double: invalid value '(.*)'",
                              re.DOTALL)


def _diagnose(path: Path, header: list[str], arrow_message: str, has_header: bool = True) -> NoReturn:
    """pyarrow refused the file: find the physical line and column it means, and say so."""
    conversion = ARROW_CONVERSION.search(arrow_message)
    records = _records(path)
    if has_header:
        next(records)
    for line, fields in records:
        if len(fields) != len(header):
            raise ValueError(f"{_name(path)} is ragged: line {line} has {len(fields)} fields, "
                             f"the {'header' if has_header else 'first line'} has {len(header)}")
        if conversion:
            column, value = int(conversion[1]), conversion[2]
            if fields[column].strip() == value.strip():
                raise ValueError(f"{_name(path)} line {line}, column {header[column]!r}: not a number: {value!r}")
    first_line = arrow_message.strip().splitlines()[0] if arrow_message.strip() else "unreadable"
    raise ValueError(f"{_name(path)} cannot be parsed as CSV: {first_line}")


def _check_finite(path: Path, values: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"{name}[{at[0]}]" if name == "y" else f"{name}[{', '.join(map(str, at))}]"
        raise ValueError(f"{_name(path)} {where}: {values[at]} is not finite")
