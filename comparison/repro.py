"""A repro bundle per finding of `compare.py explain --out DIR`: the step's batch, parameters and optimiser
state in step.npz, and per framework a short standalone script (plain framework code, no import of this
package) that replays that one step and prints its loss, gradients and updates at full precision."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import RowName
from ..backends.base import ADAM_BETAS, ADAM_EPS
from ..layers import Linear
from ..tasks import Problem
from .explain import Finding, finding_lines
from .saved import existing_ancestor, owned, prove_writable, write_folder_whole

BUNDLE_MARKER = "explain.txt"  # the bundle's report as text
BUNDLE = "explain bundle"  # its kind in the owner file: only a folder that proves it is one is replaced

PROLOGUE = '''"""Replays one optimiser step of a backend-compare explain finding with __FRAMEWORK__ alone:
prints the loss, every gradient and every update (the change the step makes) at full precision."""
from pathlib import Path

import numpy as np

LAYERS = __LAYERS__  # ("linear", in, out, bias) or (activation,), as nn.Sequential numbers them
OPTIONS = __OPTIONS__
bundle = np.load(Path(__file__).with_name("step.npz"))
DTYPE = OPTIONS["dtype"]
X, y = bundle["X"].astype(DTYPE), bundle["y"].astype(DTYPE)
params = {k[7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith("params/")}  # (out, in) weights
STEP = int(bundle["state/step"])  # optimiser steps already taken
state = {kind: {k[len(kind) + 7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith(f"state/{kind}/")}
         for kind in ("velocity", "m", "v")}  # torch's momentum buffer; Adam's biased moments
BETA1, BETA2, EPS = __ADAM__


def numbers(array):
    return "[" + ", ".join(f"{float(value):.17g}" for value in np.asarray(array).ravel()) + "]"


def show(loss, grads, updates):
    print(f"loss {float(loss):.17g}")
    for name in params:
        print(f"gradient {name} {numbers(grads[name])}")
    for name in params:
        print(f"update {name} {numbers(updates[name])}")
'''

def layers_literal(problem: Problem) -> list[tuple[Any, ...]]:
    return [("linear", layer.in_features, layer.out_features, layer.bias) if isinstance(layer, Linear)
            else (layer.label,) for layer in problem.spec]


def script(framework: str, problem: Problem, options: dict[str, Any]) -> str:
    kept = {key: options[key] for key in ("dtype", "optimizer", "lr", "momentum", "weight_decay", "loss",
                                         "huber_delta")}
    return (PROLOGUE.replace("__FRAMEWORK__", framework).replace("__LAYERS__", repr(layers_literal(problem)))
            .replace("__OPTIONS__", repr(kept)).replace("__ADAM__", repr((*ADAM_BETAS, ADAM_EPS)))
            + replay_script(framework))


def replay_script(framework: str) -> str:
    """The body of `framework`'s replay script, kept next to its backend (backends/FRAMEWORK_replay.py)."""
    module = importlib.import_module(f"..backends.{framework}_replay", __package__)
    body: str = module.SCRIPT
    return body


def has_replay_script(framework: str) -> bool:
    return importlib.util.find_spec(f"..backends.{framework}_replay", __package__) is not None


def _folder_name(finding: Finding) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{finding.backend_a}-vs-{finding.backend_b}")


def bundle_arrays(problem: Problem, finding: Finding) -> dict[str, np.ndarray]:
    replay = finding.replay
    rows = replay["batch"]
    arrays = {"X": problem.X_train[rows], "y": problem.y_train[rows], "state/step": np.array(replay["state"]["step"])}
    arrays.update({f"params/{name}": value for name, value in replay["params"].items()})
    for kind in ("velocity", "m", "v"):
        arrays.update({f"state/{kind}/{name}": value for name, value in replay["state"].get(kind, {}).items()})
    return arrays


def check_bundle_folder(given: str) -> Path:
    """A new folder, an empty one, or a previous bundle (replaced whole); refused otherwise, before running."""
    out = Path(given)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ValueError(f"--out {given!r} exists and is not a folder; give a new folder or a previous bundle's")
        entries = sorted(entry.name for entry in out.iterdir())
        if entries and not owned(out, BUNDLE):
            raise ValueError(f"--out {given!r} holds files that are not an explain bundle ({', '.join(entries[:3])}"
                             f"{', …' if len(entries) > 3 else ''}); give a new folder, an empty one or a previous "
                             "bundle's")
    prove_writable(existing_ancestor(out.parent), "--out", given)
    return out


HTML = "report.html"


def write_bundle(out: Path, problem: Problem, options: dict[str, Any], findings: list[Finding], text: str,
                 page: str | None) -> None:
    """Every differing pair's folder (step.npz, finding.txt and one script per framework), the report as
    text and as report.html, written whole as a run folder is."""
    def fill(staging: Path) -> None:
        (staging / BUNDLE_MARKER).write_text(text)
        if page is not None:  # None: it could not be made (and the caller says so)
            (staging / HTML).write_text(page)
        for finding in findings:
            if finding.agree or not finding.replay:
                continue
            folder = staging / _folder_name(finding)
            folder.mkdir()
            np.savez(folder / "step.npz", **bundle_arrays(problem, finding))
            frameworks = [name for name in dict.fromkeys(RowName.parse(row).backend for row in
                                                         (finding.backend_a, finding.backend_b))
                          if has_replay_script(name)]
            for framework in frameworks:  # replay_numpy.py: a numpy.py would shadow NumPy itself
                (folder / f"replay_{framework}.py").write_text(script(framework, problem, options))
            (folder / "finding.txt").write_text("\n".join(finding_lines(finding)) + "\n\nrun: " + " ; ".join(
                f"python replay_{framework}.py" for framework in frameworks) + "\n")

    write_folder_whole(out, fill, lambda folder: owned(folder, BUNDLE), "an explain bundle", BUNDLE)
