"""A model checked in a worker process of its own (porting/worker.py): the reader's interface, each call a request
to the worker. A worker that dies is one error naming its model."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..layers import Link
from .native import Arrays, Capture, Found, NativeModel, Training, Trajectory


class RemoteModel(NativeModel):
    """FILE.py:FACTORY's model in a worker process; close() ends it."""

    def __init__(self, given: str, side: str) -> None:
        super().__init__(None, side)
        env = {**os.environ, "BACKEND_COMPARE_PARENT": str(os.getpid())}
        self._process = subprocess.Popen([sys.executable, "-m", "backend_compare.porting.worker"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         start_new_session=True, env=env)  # Ctrl-C reaches this process only
        self._stderr: collections.deque[str] = collections.deque(maxlen=5)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        described = self._call("load", given, side)
        for name in ("framework", "title"):  # the worker's reader's, known once it has read the model's type
            object.__setattr__(self, name, described[name])
        self._class = described["model_class"]

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            text = line.decode(errors="replace").rstrip()
            if text:
                self._stderr.append(text)

    def _call(self, method: str, *args: Any) -> Any:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            pickle.dump((method, args), self._process.stdin)
            self._process.stdin.flush()
            answer = pickle.load(self._process.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError) as err:
            code = self._process.wait()
            last = f"; it said: {self._stderr[-1]}" if self._stderr else ""
            raise ValueError(f"model {self.side}: its worker process ended (exit {code}) during {method}{last}"
                             ) from err
        if answer[0] == "error":
            raise {"TypeError": TypeError}.get(answer[1], ValueError)(answer[2])
        return answer[1]

    def close(self) -> None:
        """End the worker (its stdin closed: it leaves; killed if it does not)."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()

    @classmethod
    def accepts(cls, model: Any) -> bool:
        return False  # made by name, never found by type

    @property
    def model_class(self) -> str:
        return self._class

    # ---- the reader's interface, by request ----

    def read(self, X: np.ndarray) -> None:
        self.layers, self.channels_last = self._call("read", X)

    def dtype(self) -> str:
        return str(self._call("dtype"))

    def cast(self, dtype: str) -> None:
        self._call("cast", dtype)

    def capture(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, dict[int, Capture]]:
        return self._call("capture", X, train)

    def params(self) -> Arrays:
        return self._call("params")

    def state(self) -> Arrays:
        return self._call("state")

    def set_params(self, values: Mapping[str, np.ndarray]) -> None:
        self._call("set_params", dict(values))

    def set_state(self, values: Mapping[str, np.ndarray]) -> None:
        self._call("set_state", dict(values))

    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        return self._call("train", X, y, training)

    @contextmanager
    def without_dropout(self) -> Iterator[list[str]]:
        try:
            yield self._call("dropout_off")
        finally:
            self._call("dropout_on")

    def optimizer_settings(self, training: Training) -> dict[str, str]:
        return self._call("optimizer_settings", training)

    def saved_weights(self) -> dict[str, np.ndarray]:
        return self._call("saved_weights")

    # the framework's side of a reader lives in the worker
    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        raise NotImplementedError

    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        raise NotImplementedError

    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        raise NotImplementedError

    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        raise NotImplementedError
