"""Batch orders made one epoch at a time: epochs × rows of indices can outweigh the data itself."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from .arguments import in_order

Epoch = list[np.ndarray]  # the row indices of each minibatch, in order


class EpochBatches(Sequence[Epoch]):
    """Every epoch's minibatches, each made when it is asked for by replaying `epochs()`, a function
    that starts the same sequence of epochs afresh each time it is called. Iterating makes each epoch
    once; asking for an earlier epoch than the last one asked for replays from the first."""

    def __init__(self, epochs: Callable[[], Iterator[Epoch]], count: int, n_rows: int, batch_size: int,
                 recipe: dict[str, Any] | None = None) -> None:
        self._epochs, self._count = epochs, count
        self.recipe = recipe  # how shuffled_epochs made it: enough for another process to make the same
        self.batch_size = batch_size
        self.steps_per_epoch = math.ceil(n_rows / batch_size)
        self._replay: Iterator[Epoch] | None = None
        self._position = 0  # the epoch self._replay yields next
        self._last: tuple[int, Epoch] | None = None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Epoch]:
        return itertools.islice(self._epochs(), self._count)

    @overload
    def __getitem__(self, epoch: int) -> Epoch: ...

    @overload
    def __getitem__(self, epoch: slice) -> list[Epoch]: ...

    def __getitem__(self, epoch: int | slice) -> Epoch | list[Epoch]:
        if isinstance(epoch, slice):
            return [self[i] for i in range(*epoch.indices(self._count))]
        if not -self._count <= epoch < self._count:
            raise IndexError(f"epoch {epoch} out of range for {self._count} epochs")
        epoch %= self._count
        if self._last is not None and self._last[0] == epoch:
            return self._last[1]
        if self._replay is None or epoch < self._position:
            self._replay, self._position = self._epochs(), 0
        for _ in range(epoch - self._position):
            next(self._replay)
        self._last, self._position = (epoch, next(self._replay)), epoch + 1
        return self._last[1]


def batch_order(batches: Sequence[np.ndarray], n_rows: int) -> tuple[np.ndarray | None, list[tuple[int, int]]]:
    """The batches' row indices into n_rows loaded rows in one array (None: every row, as loaded: nothing to copy)
    and each batch's (start, stop) in it; a ValueError for an empty batch or an index out of range."""
    if len(batches) == 1:  # a full batch, or one step: no concatenation
        order = np.asarray(batches[0]).ravel()
        bounds = [(0, order.size)]
    else:
        order = np.concatenate(batches, axis=None)
        ends = list(itertools.accumulate(np.size(batch) for batch in batches))
        bounds = list(zip([0, *ends[:-1]], ends, strict=True))
    if order.dtype.kind not in "iu" or any(start == stop for start, stop in bounds):
        raise ValueError("every batch must be a non-empty array of integer row indices")
    if order.size == n_rows and order[0] == 0 and in_order(order):
        return None, bounds
    if order.min() < 0 or order.max() >= n_rows:
        raise ValueError(f"batch indices must lie in [0, {n_rows}); received {order.min()}..{order.max()}")
    return order.astype(np.int64, copy=False), bounds


def gathered(order: np.ndarray | None, bounds: list[tuple[int, int]],
             most: int) -> Iterator[tuple[np.ndarray | None, list[tuple[int, int]]]]:
    """The rows of `order` and their batches' bounds in chunks of at most `most` rows (but whole batches), so a
    step's rows are copied into batch order a chunk at a time: bounded memory, still in cache when used."""
    if order is None or order.size <= most:
        yield order, bounds
        return
    first = 0
    while first < len(bounds):
        start, last = bounds[first][0], first
        while last + 1 < len(bounds) and bounds[last + 1][1] - start <= most:
            last += 1
        yield order[start : bounds[last][1]], [(a - start, b - start) for a, b in bounds[first : last + 1]]
        first = last + 1


def split_batches(order: np.ndarray, batch_size: int) -> Epoch:
    """One epoch's row order cut into consecutive minibatches (views); the last may be smaller."""
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shuffled_epochs(rng: np.random.Generator, n_rows: int, batch_size: int, epochs: int,
                    shuffle: bool = True) -> EpochBatches:
    """Per epoch, a permutation of the rows drawn from `rng` (from its current state, which is left as
    it is), cut into minibatches; without `shuffle`, the rows in order every epoch."""
    state = rng.bit_generator.state
    kind = type(rng.bit_generator)

    def epochs_from_the_start() -> Iterator[Epoch]:
        if not shuffle:
            in_order = split_batches(np.arange(n_rows, dtype=np.int32 if n_rows < 2**31 else np.int64), batch_size)
            yield from itertools.repeat(in_order, epochs)
            return
        bits = kind()
        bits.state = state
        replay = np.random.Generator(bits)
        for _ in range(epochs):
            yield split_batches(replay.permutation(n_rows), batch_size)

    recipe = {"n_rows": n_rows, "batch_size": batch_size, "epochs": epochs, "shuffle": shuffle, "rng": state}
    return EpochBatches(epochs_from_the_start, epochs, n_rows, batch_size, recipe)


def from_recipe(recipe: dict[str, Any]) -> EpochBatches:
    """The EpochBatches whose `recipe` this is: the same batches, made here."""
    bits = getattr(np.random, recipe["rng"]["bit_generator"])()
    bits.state = recipe["rng"]
    return shuffled_epochs(np.random.Generator(bits), recipe["n_rows"], recipe["batch_size"], recipe["epochs"],
                           recipe["shuffle"])
