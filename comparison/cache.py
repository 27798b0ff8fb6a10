"""A sweep's cache: each finished job's row under its key, in one SQLite file beside the sweep's tables.

One file, not one per job: a 10 000-job sweep made a folder of 10 000 files, slow to list, copy and back up.
Rows are committed a batch at a time (every second and when the sweep ends or is stopped), each transaction
whole or absent, so a killed sweep loses at most the last second's jobs and never holds half a row. Every
row is checked as it is read: whole, of the row's form and of its own job (the key it holds is its own);
anything else is not a result, and its job runs again. Caches written before (one JSON file per job in
jobs/) are still read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import sqlite3
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .sweep import METRICS

CACHE = "jobs.sqlite"
OLD_CACHE = "jobs"  # the folder of one JSON file per job that sweeps wrote before
COMMIT_SECONDS = 1.0  # a batch is committed at least this often while jobs finish
MAX_ENTRY_BYTES = 64 * 2**20
BUSY_SECONDS = 60  # another sweep writing into the same folder holds the lock this long at most
CHUNK = 500  # keys per query, below SQLite's limit on parameters


class CacheUnreadable(Exception):
    """The cache file is there but is not a SQLite database of rows."""


def cache_path(folder: Path) -> Path:
    return folder / CACHE


def _regular(path: Path) -> bool:
    """A FIFO or a device is never opened: reading it could block for ever."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _stored_rows(folder: Path, keys: list[str]) -> dict[str, str]:
    """The row text stored under each of `keys` found in the cache file (CacheUnreadable when it is damaged)."""
    path = cache_path(folder)
    if not (path.exists() or path.is_symlink()):
        return {}
    if not _regular(path):
        raise CacheUnreadable(f"{CACHE} is not a regular file")
    found: dict[str, str] = {}
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=BUSY_SECONDS)) as db:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                query = f"SELECT key, row FROM jobs WHERE key IN ({','.join('?' * len(chunk))})"
                for key, row in db.execute(query, chunk):
                    found[str(key)] = row if isinstance(row, str) else ""
    except sqlite3.Error as err:
        raise CacheUnreadable(f"{CACHE} is not a readable cache ({err})") from None
    return found


def _old_entry(old: Path, key: str) -> str | None:
    path = old / f"{key}.json"
    if not (path.exists() or path.is_symlink()):
        return None
    if not _regular(path) or path.stat().st_size > MAX_ENTRY_BYTES:
        return ""
    try:
        return path.read_bytes().decode()
    except (OSError, ValueError):
        return ""


def lookup(folder: Path, keys: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The cached rows among `keys` (only an entry that is whole, of the row's form and of its own job), and the
    entries that are there but not a result of their job, each with what is wrong: one read of the cache."""
    wanted = list(keys)
    try:
        stored, unreadable = _stored_rows(folder, wanted), None
    except CacheUnreadable as err:
        stored, unreadable = {}, str(err)
    old = folder / OLD_CACHE
    reads_old = old.is_dir() and not old.is_symlink()  # looked at once, not once per key
    rows: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    for key in wanted:
        text = stored.get(key)
        if text is None and reads_old:
            text = _old_entry(old, key)
        if text is None:
            if unreadable:
                problems[key] = unreadable
            continue
        try:
            row = json.loads(text) if len(text) <= MAX_ENTRY_BYTES else None
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            problems[key] = "not a readable JSON object"
        elif (problem := entry_problem(row, key)) is not None:
            problems[key] = problem
        else:
            rows[key] = row
    return rows, problems


def cached(folder: Path, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The cached rows among `keys` (see lookup)."""
    return lookup(folder, keys)[0]


def entry_problem(row: dict[str, Any], key: str) -> str | None:
    """What keeps a cache entry from being its job's row (None when nothing)."""
    if row.get("key") != key:
        return f"it holds job {str(row.get('key'))[:16]!r}'s result, not this job's"
    for name, kind in (("backend", str), ("status", str), ("mode", str)):
        if not isinstance(row.get(name), kind):
            return f"its {name} is missing or not text"
    if isinstance(row.get("seed"), bool) or not isinstance(row.get("seed"), int):
        return "its seed is missing or not an integer"
    for metric in (*METRICS, "steps"):
        value = row.get(metric)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"its {metric} is not a number"
    if not isinstance(row.get("params", {}), dict) or not isinstance(row.get("curve", {}), dict):
        return "its parameters or curve are not of the row's form"
    return None


def _as_os_error(err: sqlite3.Error, path: Path) -> OSError:
    """SQLite's error as the OSError a file write gives, so a full disk reads the same from every writer."""
    text = str(err)
    code = errno.ENOSPC if "full" in text else errno.EROFS if "readonly" in text else errno.EIO
    return OSError(code, text, str(path))


class CacheWriter:
    """Rows added as jobs finish, committed a batch at a time; the last batch when the block ends, however."""

    def __init__(self, folder: Path) -> None:
        self.path = cache_path(folder)
        self.pending: list[tuple[str, str]] = []
        self.committed = time.monotonic()
        self.db: sqlite3.Connection | None = None

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.commit()
        finally:
            if self.db is not None:
                self.db.close()

    def add(self, row: dict[str, Any]) -> None:
        plain = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        self.pending.append((str(row["key"]), json.dumps(plain, default=str)))
        if time.monotonic() - self.committed >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        if not self.pending:
            return
        try:
            db = self._open()
            with db:  # one transaction: every row of the batch, or none
                db.executemany("INSERT OR REPLACE INTO jobs (key, row) VALUES (?, ?)", self.pending)
        except sqlite3.Error as err:
            raise _as_os_error(err, self.path) from None
        self.pending.clear()
        self.committed = time.monotonic()

    def _open(self) -> sqlite3.Connection:
        if self.db is None:
            if (self.path.exists() or self.path.is_symlink()) and not _readable(self.path):
                # Damaged, and ours (the folder was proven a sweep's before anything ran): its rows were
                # reported as running again, so a new cache of the rows run now replaces it.
                self.path.unlink()
            self.db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
            self.db.execute("CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
        return self.db


def _readable(path: Path) -> bool:
    try:
        _stored_rows(path.parent, ["-"])  # a query, which is what finds a file that is not a cache
    except CacheUnreadable:
        return False
    return True


def entry_count(folder: Path) -> int:
    """How many rows the cache holds (its old JSON files included)."""
    count = 0
    if _regular(cache_path(folder)):
        with contextlib.closing(sqlite3.connect(f"{cache_path(folder).resolve().as_uri()}?mode=ro", uri=True)) as db:
            count += int(db.execute("SELECT count(*) FROM jobs").fetchone()[0])
    old = folder / OLD_CACHE
    return count + (len(list(old.glob("*.json"))) if old.is_dir() else 0)
