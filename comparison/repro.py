"""A repro bundle per finding of `compare.py explain --out DIR`: the step's batch, parameters and optimiser
state in step.npz, and per framework a short standalone script (plain framework code, no import of this
package) that replays that one step and prints its loss, gradients and updates at full precision; a backend
with no such script (one of someone else's) gets one that replays it through its own class, or finding.txt
says why it cannot."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend, RowName
from ..layers import Activation, Layer, Linear
from ..optimizers.training import ADAM_BETAS, ADAM_EPS
from ..tasks import Problem
from .explain import Finding, finding_lines
from .saved import check_folder_of, owned, write_folder_whole

BUNDLE_MARKER = "explain.txt"  # the bundle's report as text
BUNDLE = "explain bundle"  # its kind in the owner file: only a folder that proves it is one is replaced

PROLOGUE = '''"""Replays one optimiser step of a backend-compare explain finding with __FRAMEWORK__:
prints the loss, every gradient and every update (the change the step makes) at full precision."""
from pathlib import Path

import numpy as np

LAYERS = __LAYERS__
OPTIONS = __OPTIONS__
bundle = np.load(Path(__file__).with_name("step.npz"))
DTYPE = OPTIONS["dtype"]
X, y = bundle["X"].astype(DTYPE), bundle["y"].astype(DTYPE)
params = {k[7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith("params/")}  # (out, in) weights
STEP = int(bundle["state/step"])  # optimiser steps already taken
KINDS = {k.split("/")[1] for k in bundle.files if k.startswith("state/") and k != "state/step"}
state = {kind: {k[len(kind) + 7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith(f"state/{kind}/")}
         for kind in ("velocity", "m", "v", *sorted(KINDS))}  # torch's momentum buffer, Adam's moments, the others
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

SCRIPTED = ("tanh", "relu", "sigmoid")  # the activations the standalone scripts write


def standalone(problem: Problem) -> bool:
    """Whether the frameworks' standalone scripts can write the model: Linear layers and activations; any other
    layer is replayed through the backend's own class."""
    return all(isinstance(layer, Linear) or (isinstance(layer, Activation) and layer.name in SCRIPTED)
               for layer in problem.spec)


def layers_literal(problem: Problem) -> list[tuple[Any, ...]]:
    return [("linear", layer.in_features, layer.out_features, layer.bias) if isinstance(layer, Linear)
            else (layer.label,) for layer in problem.spec]


KEPT = ("dtype", "optimizer", "lr", "momentum", "weight_decay", "loss", "huber_delta", "schedule", "clip",
        "label_smoothing", "class_weights")
SCRIPTED_TRAINING = ("sgd", "momentum", "adam")  # the optimisers the standalone scripts write, at a constant rate
SCRIPTED_LOSSES = ("mse", "half-mse", "huber", "cross-entropy")  # and the losses


def scripted_training(options: Mapping[str, Any]) -> bool:
    """Whether the standalone scripts write this training (optimiser, schedule, clip and loss): else the backend's
    own class replays it."""
    return (options["optimizer"] in SCRIPTED_TRAINING and not options.get("schedule") and not options.get("clip")
            and options["loss"] in SCRIPTED_LOSSES and not options.get("label_smoothing")
            and not options.get("class_weights"))


def _prologue(framework: str, layers: str, options: dict[str, Any]) -> str:
    return (PROLOGUE.replace("__FRAMEWORK__", framework).replace("__LAYERS__", layers)
            .replace("__OPTIONS__", repr(options)).replace("__ADAM__", repr((*ADAM_BETAS, ADAM_EPS))))


def script(framework: str, problem: Problem, options: dict[str, Any]) -> str:
    layers = f"{layers_literal(problem)!r}  # ('linear', in, out, bias) or (activation,), as nn.Sequential numbers them"
    return _prologue(f"{framework} alone", layers, {key: options.get(key) for key in KEPT}) + replay_script(framework)


# A backend without a standalone script of its framework's (one of someone else's): its own class replays the step
# through the Backend API, so its own code, whatever it does, computes the numbers.
THROUGH_ITS_CLASS = r'''
import importlib


def imported(module, qualname):
    found = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


model = imported(*BACKEND)([imported(module, name)(**fields) for module, name, fields in LAYERS], **OPTIONS)
model.set_params(params)
model.set_optimizer_state({"step": STEP, **state})
running = {k[7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith("layers/")}  # BatchNorm statistics
if running:
    model.set_state(running)
model.load(X, y)
loss, grads = model.loss_and_grads(X, y)
updates, _ = model.update_for(np.arange(len(X)))
show(loss, grads, updates)
'''


def _importable(kind: str, cls: type) -> str | None:
    """Why `cls` cannot be imported by name from a fresh interpreter, or None when it can."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return f"its {kind} class {where} is defined where a fresh Python cannot import it by name"
    try:
        found: Any = importlib.import_module(cls.__module__)
    except ImportError:  # loaded from a file under a name no import finds
        return f"its {kind} class {where} is in a module a fresh Python cannot import by name"
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    return None if found is cls else f"its {kind} class {where} is not what that name imports"


def _layer_fields(layer: Layer) -> dict[str, Any] | None:
    """The layer's options as literals a script can hold, or None when they are not all literals."""
    if not dataclasses.is_dataclass(layer):
        return None
    fields = {field.name: getattr(layer, field.name) for field in dataclasses.fields(layer)}
    try:
        return fields if ast.literal_eval(repr(fields)) == fields else None
    except (ValueError, SyntaxError):
        return None


def class_script(name: str, backend: type[Backend], problem: Problem, options: dict[str, Any]) -> tuple[str, str]:
    """The replay script of a backend through its own class (its module imported by name), or "" and why not."""
    layers: list[tuple[str, str, dict[str, Any]]] = []
    for layer in problem.spec:
        fields, reason = _layer_fields(layer), _importable("layer", type(layer))
        if reason is not None:
            return "", reason
        if fields is None:
            return "", f"layer {layer.describe()} has options a script cannot write as literals"
        layers.append((type(layer).__module__, type(layer).__qualname__, fields))
    reason = _importable("backend", backend)
    if reason is not None:
        return "", reason
    head = _prologue(f"the {name} backend's own class ({backend.__module__}.{backend.__qualname__}, importable by "
                     "that name) through backend_compare's Backend API, as it has no standalone script of its "
                     "framework's", repr(layers) + "  # (module, class, options) of each layer", options)
    return head + f"\n\nBACKEND = {(backend.__module__, backend.__qualname__)!r}\n" + THROUGH_ITS_CLASS, ""


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
    for kind in (kind for kind in replay["state"] if kind != "step"):  # the optimiser's kinds
        arrays.update({f"state/{kind}/{name}": value for name, value in replay["state"][kind].items()})
    arrays.update({f"layers/{name}": value for name, value in replay.get("layers", {}).items()})  # running statistics
    return arrays


def check_bundle_folder(given: str) -> Path:
    """A new folder, an empty one, or a previous bundle (replaced whole); refused otherwise, before running."""
    return check_folder_of(given, BUNDLE, "explain bundle")


HTML = "report.html"


def _scripts(finding: Finding, backends: Mapping[str, Backend], problem: Problem, options: dict[str, Any]
             ) -> tuple[dict[str, str], list[str]]:
    """replay_NAME.py by backend of the pair: its framework's standalone script, or one through its own class;
    and, for a backend that gets neither, why."""
    scripts, missing = {}, []
    for row in dict.fromkeys((finding.backend_a, finding.backend_b)):
        parsed = RowName.parse(row)
        if has_replay_script(parsed.backend) and standalone(problem) and scripted_training(options):
            scripts[parsed.backend] = script(parsed.backend, problem, options)
            continue
        kept = {**{key: options[key] for key in KEPT if options.get(key) is not None},  # the rest: the defaults
                "mode": parsed.mode or options.get("mode", "usual")}
        text, reason = class_script(parsed.backend, type(backends[row]), problem, kept)
        if text:
            scripts[re.sub(r"[^A-Za-z0-9_]+", "_", row)] = text
        else:
            missing.append(f"no replay script for {row}: {reason}; step.npz holds the step's start to replay it by "
                           "hand")
    return scripts, missing


def write_bundle(out: Path, problem: Problem, options: dict[str, Any], findings: list[Finding], text: str,
                 page: str | None, backends: Mapping[str, Backend]) -> None:
    """Every differing pair's folder (step.npz, finding.txt and one script per backend), the report as text and
    as report.html, written whole as a run folder is."""
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
            scripts, missing = _scripts(finding, backends, problem, options)
            for name, body in scripts.items():  # replay_numpy.py: a numpy.py would shadow NumPy itself
                (folder / f"replay_{name}.py").write_text(body)
            (folder / "finding.txt").write_text("\n".join([*finding_lines(finding), "", "run: " + " ; ".join(
                f"python replay_{name}.py" for name in scripts), *missing]) + "\n")

    write_folder_whole(out, fill, lambda folder: owned(folder, BUNDLE), "an explain bundle", BUNDLE)
