"""`compare.py port A B --inputs FILE.npz`: does model B (a port) compute what model A does? Each model is
FILE.py:FACTORY; the check reads both, lists the conventions that differ, carries A's weights into B, compares every
layer's input and output and a few training steps. --check exits 1 when the port does not agree within noise."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..comparison.saved import OutputError, check_folder_of, html_page, owned, write_folder_whole
from ..signals import FAILED
from .console import UsageError, failed, usage, warnings_as, write_stdout
from .options import Parser

HELP = """Check a port: model B, written in one framework, against model A in another. Each is FILE.py:FACTORY, a
function that returns the model (a torch nn.Module, a Gluon Block, a Keras model, a Flax NNX Module). Inputs are an
.npz with X (rows first, images NCHW: a channels-last model gets them transposed) and, to train, y. B ends holding
A's weights. Exit 0 when the port agrees within noise; with --check, 1 when it does not.

    compare.py port lenet_gluon.py:make lenet_torch.py:make --inputs digits.npz --loss cross-entropy --check
    compare.py port a.py:model b.py:model --inputs x.npz --format json --out port-report
"""
KIND = "port report"
FILES = ("report.txt", "report.json", "report.html")


def _parser(prog: str) -> Parser:
    parser = Parser(prog=prog, description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_a", metavar="A", help="FILE.py:FACTORY of the model ported from")
    parser.add_argument("model_b", metavar="B", help="FILE.py:FACTORY of its port")
    parser.add_argument("--inputs", required=True, metavar="FILE.npz", help="X (and y, to train)")
    parser.add_argument("--steps", type=int, default=3, help="training steps of each framework's optimiser (3)")
    parser.add_argument("--optimizer", choices=("sgd", "momentum", "adam"), default="sgd")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (0.01)")
    parser.add_argument("--momentum", type=float, default=0.9, help="for --optimizer momentum (0.9)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="each framework's own weight decay (0)")
    parser.add_argument("--loss", choices=("mse", "cross-entropy"), default="mse")
    parser.add_argument("--batch-size", type=int, default=0, help="rows per step (every row: 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), help="cast both models (default: as built)")
    parser.add_argument("--mapping", metavar="FILE.json", help="{A's layer path: B's layer path} for every layer "
                                                               "with parameters (default: paired in order)")
    parser.add_argument("--executor", choices=("inline", "process"), default="inline",
                        help="inline: both models in this process; process: each in a worker process of its own")
    parser.add_argument("--check", action="store_true", help="exit 1 when the port does not agree within noise")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--out", metavar="DIR", help="a folder for report.txt, report.json and report.html")
    return parser


def _inputs(given: str) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(given)
    if not path.is_file():
        raise UsageError(f"--inputs {given!r} is not a file")
    try:
        found = np.load(path, allow_pickle=False)
        if not isinstance(found, np.lib.npyio.NpzFile):
            raise UsageError(f"--inputs {given!r} is one array (.npy); it needs an .npz with X (and y to train): "
                             "numpy.savez(FILE, X=…, y=…)")
        with found:
            if "X" not in found.files:
                raise UsageError(f"--inputs {given!r} holds {', '.join(found.files) or 'no array'}; it needs X (and y "
                                 "to train)")
            return found["X"], (found["y"] if "y" in found.files else None)
    except UsageError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"--inputs {given!r} is not an .npz of arrays ({err})") from err


def _mapping(given: str | None) -> dict[str, str] | None:
    if given is None:
        return None
    try:
        found: Any = json.loads(Path(given).read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"--mapping {given!r} is not a JSON file of layer paths ({err})") from err
    if not isinstance(found, dict) or not all(isinstance(key, str) and isinstance(value, str)
                                              for key, value in found.items()):
        raise UsageError(f"--mapping {given!r} must hold one object of A's layer paths to B's")
    return found


def main(argv: list[str], prog: str) -> int:
    prog = f"{prog} port"
    try:
        args = _parser(prog).parse_args(argv)
        if not 0 <= args.steps <= 10_000:
            raise UsageError(f"--steps must be from 0 to 10000; received: {args.steps}")
        if args.batch_size < 0:
            raise UsageError(f"--batch-size must be 0 (every row) or more; received: {args.batch_size}")
        out = check_folder_of(args.out, KIND, "port report") if args.out is not None else None
        X, y = _inputs(args.inputs)
        mapping = _mapping(args.mapping)
        from ..porting import check_port
        from ..porting.bundle import fill_bundle
        from ..porting.native import Training

        training = Training(args.loss, args.optimizer, args.lr, args.momentum, args.weight_decay, args.steps,
                            args.batch_size)

        # the user's files may print: the report owns stdout (--format json must stay JSON)
        with warnings_as(prog), contextlib.redirect_stdout(sys.stderr), \
                _models(args.model_a, args.model_b, args.executor) as (model_a, model_b):
            report = check_port(model_a, model_b, X, y if args.steps else None, loss=args.loss,
                                optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, steps=args.steps, batch_size=args.batch_size,
                                dtype=args.dtype, mapping=mapping)
            weights = {side: _weights(model, report.models[side]) for side, model in (
                ("A", model_a), ("B", model_b))} if out is not None else {}
    except (UsageError, ValueError, TypeError) as err:
        first, *table = str(err).splitlines() or [""]
        code = usage(prog, first)
        if table:  # both models' layers side by side, under the one-line error
            print("\n".join(table), file=sys.stderr)
        return code
    text = str(report)
    write_stdout((report.to_json() if args.format == "json" else text) + "\n")
    if out is not None:
        try:
            page = html_page(report.html)

            def fill(staging: Path) -> None:
                (staging / "report.txt").write_text(text + "\n")
                (staging / "report.json").write_text(report.to_json() + "\n")
                (staging / "report.html").write_text(page)
                models = {side: (given, weights[side], report.models[side]) for side, given in (
                    ("A", args.model_a), ("B", args.model_b))}
                fill_bundle(staging / "repro", models, X, y if args.steps else None, training, report.dtype)

            write_folder_whole(out, fill, lambda folder: owned(folder, KIND), "a port report", KIND)
        except (OSError, OutputError, ValueError, TypeError) as err:  # a full disk; a model's weights not saved
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            return failed(prog, f"the report could not be written: {reason}; nothing was written")
    return FAILED if args.check and not report.agrees else 0


@contextlib.contextmanager
def _models(given_a: str, given_b: str, executor: str) -> Iterator[tuple[Any, Any]]:
    """Both models: made here, or each in a worker process of its own (ended after)."""
    from ..porting.factories import load_factory, quiet_frameworks
    from ..porting.remote import RemoteModel

    if executor == "inline":
        quiet_frameworks(given_a, given_b)
        yield load_factory(given_a, "A"), load_factory(given_b, "B")
        return
    started: list[RemoteModel] = []
    try:
        started.append(RemoteModel(given_a, "A"))
        started.append(RemoteModel(given_b, "B"))
        yield started[0], started[1]
    finally:
        for model in started:
            model.close()


def _weights(model: Any, described: dict[str, Any]) -> dict[str, np.ndarray]:
    """A model's weights for the repro bundle, as its framework's loader takes them."""
    from ..porting.bundle import FRAMEWORKS, saved_weights
    from ..porting.remote import RemoteModel

    if isinstance(model, RemoteModel):
        return model.saved_weights()
    return saved_weights(FRAMEWORKS[described["framework"]], model)
