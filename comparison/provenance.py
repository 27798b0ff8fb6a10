"""Where a saved run came from: the command, this package's version and commit, each backend's framework
and environment, the machine, the start time, and the hash of the user's data file."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any

import psutil

from .. import __version__

HASH_CHUNK = 2**20


def started_at() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def commit() -> str | None:
    """This package's git commit when it runs from a checkout ("+ changes" when the tree differs from it);
    None when installed from a wheel or git is not there."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5)
        if head.returncode != 0:
            return None
        changed = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" + changes" if changed.stdout.strip() else "")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"system": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "host": platform.node()}


def data_file(path: str | None) -> dict[str, Any] | None:
    """The data file's name, size and SHA-256: the same numbers need the same bytes."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}


def provenance(prog: str, argv: list[str], started: str, backends: dict[str, dict[str, str]],
               data: str | None, init_from: str | None = None) -> dict[str, Any]:
    """How the run was made; `init_from`, a file of starting parameters, is hashed as the data file is."""
    return {"command": shlex.join([prog, *argv]), "package": __version__, "commit": commit(), "started": started,
            "machine": machine(), "backends": backends, "data": data_file(data),
            **({"init_from": data_file(init_from)} if init_from is not None else {})}
