"""Where a backend runs (--device cpu, cuda or auto) and what it needs for a GPU: a CUDA build of its framework,
read from the installed distributions without importing it, and a device, asked of the framework in a process of
its own (an import there costs seconds; here it would load every framework into the parent)."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEVICES = ("cpu", "cuda", "auto")
_CHECKOUT = str(Path(__file__).resolve().parents[1])  # holds backend_compare/, for the probe's process
GPU_EXTRA = "pip install -e '.[gpu]'"  # pyproject's gpu extra: the CUDA builds of torch, JAX and TensorFlow

def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_build(framework: str) -> str | None:
    """Why the installed framework cannot run on a GPU, as its distributions say, or None when a CUDA build is
    installed."""
    if framework == "numpy":
        return "the NumPy backend computes on the CPU only"
    if framework == "mxnet":
        return (f"mxnet {_version('mxnet')} is MXNet's CPU build; its CUDA builds (mxnet-cu112 and older) predate "
                "current drivers and are not supported here")
    if framework == "torch":
        version = _version("torch") or ""
        return f"torch {version} is a CPU build (its version's +cpu); {GPU_EXTRA}" if "+cpu" in version else None
    if framework == "jax":
        plugins = [name for name in ("jax-cuda12-plugin", "jax-cuda13-plugin") if _version(name)]
        return None if plugins else f"jax {_version('jax')} has no CUDA plugin (jax-cuda12-plugin); {GPU_EXTRA}"
    if framework == "tensorflow":
        cpu = _version("tensorflow-cpu")
        return f"tensorflow-cpu {cpu} is TensorFlow's CPU build; {GPU_EXTRA}" if cpu else None
    return f"the {framework} backend names no GPU support"


def count_here(framework: str) -> int:
    """The CUDA devices the framework sees, asked in this process (importing it)."""
    if framework == "torch":
        import torch

        return int(torch.cuda.device_count())
    if framework == "jax":
        import jax

        return len([device for device in jax.devices() if device.platform == "gpu"])
    if framework == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    return 0


@functools.cache
def device_count(framework: str) -> int:
    """The CUDA devices the framework sees (0 when it cannot say): asked here where it is imported already (a
    backend being built), else in a process of its own, so that the parent of the workers imports no framework."""
    if framework in sys.modules:
        return count_here(framework)
    try:
        found = subprocess.run([sys.executable, "-c", "from backend_compare.backends.devices import count_here; "
                                f"print(count_here({framework!r}))"], capture_output=True, text=True, timeout=300,
                               check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                   [_CHECKOUT, *filter(None, [os.environ.get("PYTHONPATH")])])})
    except (OSError, subprocess.TimeoutExpired):
        return 0
    lines = found.stdout.strip().splitlines()
    return int(lines[-1]) if found.returncode == 0 and lines and lines[-1].isdecimal() else 0


def deterministic_env(env_now: Mapping[str, str]) -> dict[str, str | None]:
    """What a worker's environment sets for --deterministic, read by the frameworks as they start: cuBLAS's
    workspace (torch's reproducibility notes), XLA's deterministic GPU ops (appended to the XLA_FLAGS given),
    TensorFlow's and MXNet's switches."""
    flags = env_now.get("XLA_FLAGS", "")
    return {"CUBLAS_WORKSPACE_CONFIG": env_now.get("CUBLAS_WORKSPACE_CONFIG") or ":4096:8",
            "XLA_FLAGS": f"{flags} --xla_gpu_deterministic_ops=true".strip(), "TF_DETERMINISTIC_OPS": "1",
            "MXNET_ENFORCE_DETERMINISM": "1"}


def device_of(framework: str, asked: Any) -> str:
    """A backend's device for its `device` keyword: cpu, or cuda where it can run there (auto: where it can,
    else cpu); a ValueError says why not."""
    if asked not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}; received: {asked!r}")
    found, reason = resolve(framework, asked)
    if reason is not None:
        raise ValueError(f"device cuda: {reason}")
    return found


def resolve(framework: str, asked: str) -> tuple[str, str | None]:
    """The device a backend of `framework` runs on for --device `asked`, and why it cannot where it cannot: cuda
    asked without a CUDA build or a device is (cpu, reason); auto is cuda where both are there, else cpu."""
    if asked == "cpu":
        return "cpu", None
    reason = missing_build(framework)
    if reason is None and device_count(framework) == 0:
        reason = f"{framework} sees no CUDA device on this machine"
    if reason is None:
        return "cuda", None
    return "cpu", reason if asked == "cuda" else None
