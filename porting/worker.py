"""A port check's model in a worker process of its own (`--executor process`): the model made by its FILE.py:FACTORY
and read by its framework's reader, served over stdin and stdout (pickled requests from the process that started it,
which trusts it as itself), so torch and TensorFlow, say, never share a process."""

from __future__ import annotations

import os
import pickle
import signal
import sys
from dataclasses import replace
from typing import IO, Any

from ..comparison.worker import die_with_parent
from .factories import load_factory, quiet_frameworks
from .native import NativeModel
from .readers import opened


class Served:
    """The reader of one model, and the dropout context it holds open between two requests."""

    def __init__(self, given: str, side: str) -> None:
        quiet_frameworks(given)
        self.reader: NativeModel = opened(load_factory(given, side), side)
        self.without: Any = None

    def describe(self) -> dict[str, Any]:
        reader = self.reader
        return {"framework": reader.framework, "title": reader.title, "model_class": reader.model_class}

    def read(self, X: Any) -> tuple[list[Any], bool]:
        self.reader.read(X)
        return [replace(item, module=None) for item in self.reader.layers], self.reader.channels_last

    def dropout_off(self) -> list[str]:
        self.without = self.reader.without_dropout()
        return self.without.__enter__()

    def dropout_on(self) -> None:
        if self.without is not None:
            self.without.__exit__(None, None, None)
            self.without = None

    def saved_weights(self) -> dict[str, Any]:
        from .bundle import saved_weights

        return saved_weights(self.reader.framework, self.reader.model)

    def call(self, method: str, args: tuple[Any, ...]) -> Any:
        own = getattr(self, method, None)
        return own(*args) if own is not None else getattr(self.reader, method)(*args)


def serve(incoming: IO[bytes], outgoing: IO[bytes]) -> int:
    served: Served | None = None
    side = "?"
    while True:
        try:
            method, args = pickle.load(incoming)
        except EOFError:  # the checking process has gone or is done
            return 0
        try:
            if method == "load":
                side = args[1]
                served = Served(*args)
                result: Any = ("ok", served.describe())
            else:
                assert served is not None, "load first"
                result = ("ok", served.call(method, args))
        except (ValueError, TypeError) as err:  # the user's model or inputs: said by the checking process
            result = ("error", type(err).__name__, str(err))
        except Exception as err:
            from ..backends.errors import error_line

            result = ("error", "RuntimeError", f"model {side}: {error_line(err)}")
        pickle.dump(result, outgoing)
        outgoing.flush()


def main() -> int:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the checking process's to handle; it ends this one
    outgoing = os.fdopen(os.dup(sys.stdout.fileno()), "wb")  # the protocol owns stdout: prints go to stderr
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, outgoing)


if __name__ == "__main__":
    sys.exit(main())
