"""The memory a run needs, estimated from its settings before anything is built, and what the machine
has free. The estimate is an upper bound by design: benchmarks/run.py prints it beside measured peaks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends import registration
from ..backends.base import GATHER_BYTES
from ..layers import Activation, BatchNorm, Linear, ModelSpec, input_shape, param_shapes
from ..optimizers.training import STATE_KINDS
from .run import MAX_CHECKPOINTS

WORKING_BYTES = 64 * 2**20  # bounded buffers: the float64 draw of synthetic data, gathered batches
EPOCH_OVERHEAD = 128  # bytes per epoch and backend beyond its step losses: one array object in a list
# Each seed's problem, results, tables and report rows, and each of its rows' (measured, 1,000 seeds of
# linreg: 57 KB a seed with one backend, 61 KB with two; 133 KB with the curves kept for --out).
SEED_BYTES = 96 * 2**10
RECORDED_SEED_BYTES = 192 * 2**10
ROW_BYTES = 16 * 2**10


class DoesNotFit(ValueError):
    """The run's estimated memory exceeds what the machine has free: a usage error, before any work."""


@dataclass(frozen=True)
class Part:
    what: str
    option: str  # the setting that makes this part large
    bytes: int


def estimate(*, rows: int, features: int, spec: ModelSpec, dtype: str, epochs: int, batch_size: int | None,
             val_fraction: float, backends: list[str], optimizer: str, seeds: int, record: bool,
             row_option: str, feature_option: str, from_file: bool, parallel: int = 1, text_bytes: int = 0,
             inline: bool = False, layers_option: str = "--layers") -> list[Part]:
    """Each part of the run's peak memory in bytes, with the option that sets its size; `parallel`
    backends train at once (in workers), each with its own copy of the data and its activations; `inline`:
    every backend trains in this process; `layers_option`: the option that wrote a model of layers (--hidden for
    the recurrent tasks' stacks); `text_bytes`: a CSV file's size (pyarrow may hold all its text at
    once while it parses it)."""
    item = np.dtype(dtype).itemsize
    cells = rows * (features + 1)
    n_train = max(1, rows - round(rows * val_fraction))
    batch = min(batch_size or n_train, n_train)
    data_option = (row_option if rows >= 100 * features else feature_option if features >= 100 * rows
                   else f"{row_option} × {feature_option}")
    # Made or read in float64 beside the run's dtype; a file also passes through pyarrow's columns.
    data = cells * (item + (24 if from_file else 16)) + text_bytes
    copies = len(backends) * n_train * (features + 1) * item * (2 if parallel > 1 else 1)  # each framework's,
    # and with workers each worker's copy of the arrays it was sent
    sizes = [math.prod(shape) for shape in param_shapes(spec).values()]
    n_params = sum(sizes)
    # params, grads, update, the optimiser's per-parameter buffers (sgd: one, if momentum is set); init
    per_backend = n_params * (item * (3 + max(1, len(STATE_KINDS.get(optimizer, ())))) + 8)
    snapshots = MAX_CHECKPOINTS * n_params * item * len(backends) if record else 0
    widths: list[int] = []  # the outputs of every layer with parameters, per example
    shape = input_shape(spec)
    widest = ""  # the layer with the largest output, for a model of layers other than Linear ones
    for index, layer in enumerate(spec):
        given, shape = shape, layer.output_shape(shape)
        if layer.params():
            width = math.prod(shape) + layer.kept_values(shape, given)  # a convolution's unrolled windows too
            if not widths or width > max(widths):
                widest = f"{layers_option} (layer {index} {layer.describe()}: {width:,} values per row)"
            widths.append(width)
    evaluated = max(n_train, rows - n_train, batch)  # the training-set loss is one forward pass
    # Pre-activations, activations, temporaries and gradients: torch was measured holding four at once.
    # Inline, the backends take turns in one process, and the C allocator keeps what each one's full-set forward
    # pass freed for the next (numpy and torch inline, an MLP of 64 on 1e5 rows: 84-102 MB of growth, torch
    # alone 50): each backend's activations are counted.
    activations = evaluated * sum(widths) * item * 5 * (len(backends) if inline else parallel)
    steps = epochs * math.ceil(n_train / batch)
    history = len(backends) * seeds * (steps * 8 + epochs * EPOCH_OVERHEAD)
    history_option = "--epochs" if epochs >= 100 * seeds else "--seeds" if seeds >= 100 * epochs \
        else "--seeds × --epochs"
    per_seed = (RECORDED_SEED_BYTES if record else SEED_BYTES) + len(backends) * ROW_BYTES
    linear = len(spec) == 1
    layered = not all(isinstance(layer, Linear | Activation | BatchNorm) for layer in spec)  # a model of --layers
    model_option = widest if layered else "--hidden" if not linear else feature_option
    parts = [
        Part("the data", data_option, data + copies),
        Part("the batch order", row_option, n_train * 8 * 2),
        Part("the parameters and optimiser state", model_option, len(backends) * per_backend + snapshots),
        Part("the layer activations", model_option if layered or not linear else data_option, activations),
        Part("the loss of every step", history_option, history),
        Part("the results of every seed", "--seeds", seeds * per_seed),
        Part("the exact optimum", data_option, 3 * cells * 8 if linear else 0),
        Part("the frameworks' first use", "--backends", sum(registration(name).first_use_bytes for name in backends)),
        Part("the frameworks", "--backends", sum(registration(name).import_bytes for name in backends) + WORKING_BYTES
             + GATHER_BYTES * 2),
    ]
    return parts


def available_bytes() -> int:
    """Memory this process may still use: what the machine has free, within any cgroup limit."""
    import psutil

    free = int(psutil.virtual_memory().available)
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = int(Path("/sys/fs/cgroup", limit_file).read_text().strip())
            usage = int(Path("/sys/fs/cgroup", usage_file).read_text().strip())
        except (OSError, ValueError):  # no such cgroup file, or "max": no limit there
            continue
        if limit < 2**60:
            free = min(free, limit - usage)
    return free


def readable(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if size < 1024 or unit == "PB":
            return f"{size:.3g} {unit}" if unit != "bytes" else f"{int(size)} bytes"
        size /= 1024
    raise AssertionError("unreachable")


def check_fits(parts: list[Part], free: int) -> None:
    """Refuse a run that needs more than `free`, naming the option behind its largest part."""
    total = sum(part.bytes for part in parts)
    if total > free:
        largest = max(parts, key=lambda part: part.bytes)
        raise DoesNotFit(f"the run does not fit in this machine's memory: it needs about {readable(total)} and "
                         f"{readable(free)} is free; most of it is {largest.what} ({readable(largest.bytes)}), "
                         f"set by {largest.option}")
