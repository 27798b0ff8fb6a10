"""A worker process: one backend, many jobs. Started by comparison.executors as
`python -m backend_compare.comparison.worker`, possibly with another environment's interpreter.

It says hello (protocol, package and NumPy versions), then answers messages on stdin/stdout until
the stream ends: `load` a backend (its framework's version, or why it is unavailable), take a
`problem`, `train` it (progress ticks, then the result), `stop`.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
from typing import IO, Any

import numpy as np

from .. import __version__
from ..backends import BackendUnavailable, error_line, framework_version, get_backend
from ..layers import decode_spec
from ..tasks import Problem
from . import protocol
from .run import stopped_result, train

PROGRESS_SECONDS = 0.2  # at most this often a progress message


def serve(incoming: IO[bytes], outgoing: IO[bytes]) -> int:
    protocol.send(outgoing, {"hello": {"protocol": protocol.PROTOCOL, "package": __version__,
                                       "python": platform.python_version(), "numpy": np.__version__}})
    problem: Problem | None = None
    model: Any = None  # the backend of a research session (comparison.remote)
    while True:
        try:
            message, arrays = protocol.receive(incoming)
        except protocol.WorkerGone:
            return 0
        kind = message["kind"]
        if kind == "stop":
            return 0
        if kind == "load":
            try:
                loaded = get_backend(message["backend"])
                _call_me(f"bc-{message['backend']}")
                protocol.send(outgoing, {"loaded": framework_version(message["backend"]), "modes": list(loaded.modes),
                                         "layers": list(loaded.layer_kinds())})
            except BackendUnavailable as err:
                protocol.send(outgoing, {"unavailable": str(err)})
        elif kind == "call":
            model = _call(outgoing, model, message, arrays)
        elif kind == "problem":
            problem = protocol.decode_problem(message["problem"], arrays)
        elif kind == "train":
            assert problem is not None, "a train message before any problem"
            result_message, result_arrays = protocol.encode_result(_train(outgoing, problem, message))
            protocol.send(outgoing, {"result": result_message}, result_arrays)


def _call(outgoing: IO[bytes], model: Any, message: dict[str, Any], arrays: protocol.Arrays) -> Any:
    """One call of comparison.remote on the session's backend (`build` makes it); the backend after it."""
    from .remote import decode_value, serve_call

    try:
        if message["method"] == "build":
            given = decode_value(message["payload"], arrays)
            model = get_backend(given["name"])(decode_spec(given["spec"]), **given["options"])
            protocol.send(outgoing, {"value": None})
        else:
            reply, reply_arrays = serve_call(model, message["method"], message["payload"], arrays)
            protocol.send(outgoing, reply, reply_arrays)
    except Exception as err:
        protocol.send(outgoing, {"error": str(err), "type": type(err).__name__})
    return model


def _call_me(title: str) -> None:
    """What `ps` and `top` show for this worker (Linux keeps 15 bytes): bc-NAME when loaded, bc-train-NAME
    while it trains. Elsewhere nothing changes."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, title.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _train(outgoing: IO[bytes], problem: Problem, message: dict[str, Any]) -> Any:
    done, sent_at = 0, time.monotonic()

    def tick() -> None:
        nonlocal done, sent_at
        done += 1
        if time.monotonic() - sent_at >= PROGRESS_SECONDS:
            protocol.send(outgoing, {"progress": done})
            done, sent_at = 0, time.monotonic()

    name = message["backend"]
    _call_me(f"bc-train-{name}")
    try:
        backend = get_backend(name)(problem.spec, **message["options"])
        result = train(backend, problem, init=message["init"], seed=message["seed"], record=message["record"],
                       on_epoch=tick)
    except Exception as err:  # a framework failing mid-run: its row says why
        result = stopped_result(name, f"failed: {error_line(err)}")
    finally:
        _call_me(f"bc-{name}")
    if done:
        protocol.send(outgoing, {"progress": done})
    return result


def die_with_parent() -> None:
    """SIGKILL when the main process dies, however it dies (Linux's PR_SET_PDEATHSIG), set here after
    the exec rather than by the parent before it: a fork-and-run-Python step would make JAX warn, and
    in threads it is unsafe. If the main process is already gone, leave now."""
    parent = os.environ.get("BACKEND_COMPARE_PARENT")
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker leaves when its stdin closes instead
        return
    if parent is not None and os.getppid() != int(parent):
        os._exit(0)


def main() -> int:
    die_with_parent()
    # The protocol owns stdout: a framework printing there would corrupt it, so its prints go to stderr.
    outgoing = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, outgoing)


if __name__ == "__main__":
    code = main()
    # Asked to stop, nothing is left to save: leave at once rather than through the frameworks' own exit
    # handlers: the default run waited 1.5 s at its end for them (TensorFlow's, measured with the five closing).
    sys.stderr.flush()
    os._exit(code)
