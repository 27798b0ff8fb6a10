"""check_port: does model B compute what model A does? Read both, list the conventions that differ, carry A's
weights into B (and back, exactly), compare every paired layer's input and output in evaluation and training
mode, then train both a few steps with each framework's own optimiser and say where they first part."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..backends.tolerances import ALLOWANCES, allowed_tolerance, applicable
from .compare import NOISE_CEILING, NOISE_MULTIPLE, applied, largest, relative, reordered, tolerance
from .conventions import Convention, conventions, optimizer_conventions
from .mapping import MappingArg, merged, paired, renamed
from .native import LOSSES, OPTIMIZERS, RECURRENT, Capture, NativeModel, Training, Trajectory
from .readers import opened
from .report import Forward, LayerRow, PortReport, StepRow
from .report import Training as TrainingReport

DTYPES = ("float32", "float64")


def _inputs(inputs: Any, targets: Any, loss: str) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(inputs)
    if X.dtype.kind not in "fiu" or X.ndim < 2 or not len(X):
        raise ValueError(f"inputs must be a numeric array of rows (batch first); received: dtype {X.dtype}, "
                         f"shape {X.shape}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise ValueError("inputs hold NaN or infinity")
    if targets is None:
        return X, None
    y = np.asarray(targets)
    if y.ndim == 0:
        raise ValueError(f"targets must be rows, one per input row; received: a single value {y!r}")
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "fiu" or (y.dtype.kind == "f" and not np.isfinite(y).all()):
        raise ValueError(f"targets must be finite numbers; received: dtype {y.dtype}"
                         + (", with NaN or infinity" if y.dtype.kind == "f" else ""))
    if len(y) != len(X):
        raise ValueError(f"targets must have one row per input row ({len(X)}); received: shape {y.shape}")
    if loss == "cross-entropy" and (y.dtype.kind not in "iu" and not np.array_equal(y, np.round(y))):
        raise ValueError("targets must be class indices for loss='cross-entropy'")
    return X, y


Captured = tuple[np.ndarray, dict[int, Capture]]  # a model's output and what each of its layers saw


def _forward(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]], captured: dict[str, Captured], mode: str,
             noise: dict[str, float] | None, dtype: str, allowed: float, found: list[Convention]) -> Forward:
    (out_a, seen_a), (out_b, seen_b) = captured["A"], captured["B"]
    rows: list[LayerRow] = []
    blame = None
    previous: tuple[Capture, Capture, str, str] | None = None
    for i, j in pairs:
        item_a, item_b = a.layers[i], b.layers[j]
        for model, seen, index in ((a, seen_a, i), (b, seen_b, j)):
            if index not in seen:
                raise ValueError(f"model {model.side}: layer {model.layers[index].path!r} is not called in {mode} "
                                 "mode; check_port compares the layers both forwards call in both modes")
        cap_a, cap_b = seen_a[i], seen_b[j]
        tol = tolerance(dtype, None if noise is None else noise.get(item_a.path), allowed)
        given_a, given_b = _output(a, seen_a, i, item_b.fused), _output(b, seen_b, j, item_a.fused)
        if given_a is not None and given_b is not None and item_a.kind in RECURRENT and given_a.ndim != given_b.ndim:
            # one gives every step, the other the last (Keras's return_sequences=False): the last steps compare
            given_a, given_b = (given_a[:, -1] if given_a.ndim == 3 else given_a,
                                given_b[:, -1] if given_b.ndim == 3 else given_b)
        row = LayerRow(item_a.path, item_b.path, item_a.kind, relative(cap_a.inputs, cap_b.inputs),
                       None if given_a is None or given_b is None else relative(given_a, given_b), tol)
        rows.append(row)
        if blame is None and not row.agrees:
            blame = _blame(row, previous, cap_a, cap_b, tol)
            causes = "; ".join(item.line() for item in found if item.layer_a == row.layer_a)
            if causes and row.input_difference <= tol:
                blame += f": {causes}"
        previous = (cap_a, cap_b, item_a.path, item_b.path)
    final_tol = tolerance(dtype, None if noise is None else noise.get("output"), allowed)
    final = relative(out_a, out_b)
    if blame is None and final > final_tol:
        last = f"after A's {rows[-1].layer_a!r} and B's {rows[-1].layer_b!r}" if rows else "in the whole model"
        blame = (f"the outputs differ by {final:.3g} (tolerance {final_tol:.3g}) while every paired layer agrees: "
                 f"what the forward does {last}")
    return Forward(mode, rows, final, final_tol, blame)


def _output(model: NativeModel, seen: dict[int, Capture], index: int, fused_other: str) -> np.ndarray | None:
    """Paired layer `index`'s output as the other model's layer gives it: where that one applies its activation
    itself (fused_other) and this one has it as its next layer, that layer's output; None where it is not seen."""
    if model.layers[index].fused or not fused_other:
        return seen[index].output
    following = index + 1
    if following < len(model.layers) and model.layers[following].kind == "activation" and following in seen:
        return seen[following].output
    return None


def _blame(row: LayerRow, previous: tuple[Capture, Capture, str, str] | None, cap_a: Capture, cap_b: Capture,
           tol: float) -> str:
    if row.input_difference <= tol:
        return (f"A's {row.layer_a!r} and B's {row.layer_b!r} ({row.kind}) get the same input and give outputs "
                f"{row.output_difference:.3g} apart (tolerance {tol:.3g}): the layer itself (its weights or settings)")
    if previous is None:
        return (f"the first paired layers, A's {row.layer_a!r} and B's {row.layer_b!r}, get inputs "
                f"{row.input_difference:.3g} apart: what the forward does before them")
    before_a, before_b, path_a, path_b = previous
    text = (f"A's {row.layer_a!r} and B's {row.layer_b!r} get inputs {row.input_difference:.3g} apart while A's "
            f"{path_a!r} and B's {path_b!r} before them agree: what each forward does between them")
    does_a, does_b = applied(before_a.output, cap_a.inputs, tol), applied(before_b.output, cap_b.inputs, tol)
    if does_a and does_b and does_a != does_b:
        text += f" (A applies {does_a}, B applies {does_b})"
    elif reordered(cap_a.inputs, cap_b.inputs, tol):
        text += (" (the same values in another order: images flattened channels first on one side and channels last "
                 "on the other, or a transpose; a Keras or Flax model is read as flattening channels last, as its "
                 "Flatten and reshape do)")
    return text


def _noise(shadow: NativeModel, X: np.ndarray, mode: str, captured: Captured) -> dict[str, float] | None:
    """Each layer's float32 rounding error in `mode`: the shadow side's outputs (`captured`) against its float64
    self's; None where the model cannot be run in float64 (the fixed float32 tolerance then)."""
    start, state, dtype = shadow.params(), shadow.state(), shadow.dtype()
    try:
        shadow.cast("float64")
        out64, seen64 = shadow.capture(X.astype(np.float64) if X.dtype.kind == "f" else X, mode == "train")
    except Exception:  # a model that does not run in float64 (a Keras model, a layer with a fixed dtype)
        return None
    finally:
        shadow.cast(dtype)
        shadow.set_params(start)
        shadow.set_state(state)
    out32, seen32 = captured
    noise = {shadow.layers[index].path: relative(seen32[index].output, seen64[index].output) for index in seen32}
    noise["output"] = relative(out32, out64)
    return noise


def check_port(model_a: Any, model_b: Any, inputs: Any, targets: Any = None, *, loss: str = "mse",
               optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
               steps: int = 3, batch_size: int = 0, dtype: str | None = None,
               mapping: MappingArg = None) -> PortReport:
    """Check that model_b (a port) computes what model_a does; both are changed in place: B ends holding A's
    weights (and A its own), as they were before training.

    Models: a torch nn.Module, a Gluon Block, a Keras model or layer, a Flax NNX Module. `inputs` are rows in the
    suite's canonical layout (images NCHW; a channels-last model gets them transposed). With `targets`, both models
    train `steps` steps of `optimizer` (sgd, momentum, adam: each framework's own) on `loss` (mse, cross-entropy).
    `dtype` casts both (float64 where each framework can). `mapping`: B's layer path for each of A's layers with
    parameters (a dict or a callable); by default the layers pair in order. A ValueError or TypeError names the
    model (A or B) and what was expected."""
    started = time.perf_counter()
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; received: {loss!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; received: {optimizer!r}")
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} or None; received: {dtype!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= 10_000:
        raise ValueError(f"steps must be an integer from 0 to 10000; received: {steps!r}")
    if not isinstance(lr, int | float) or isinstance(lr, bool) or not 0 < lr < 1e3:
        raise ValueError(f"lr must be a positive number below 1000; received: {lr!r}")
    for name, value in (("momentum", momentum), ("weight_decay", weight_decay)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1); received: {value!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ValueError(f"batch_size must be 0 (every row) or a positive integer; received: {batch_size!r}")
    X, y = _inputs(inputs, targets, loss)
    if model_a is model_b:
        raise ValueError("model A and model B are one object: give the port as a model of its own (B is written "
                         "with A's weights and trained)")
    a, b = opened(model_a, "A"), opened(model_b, "B")
    for model in (a, b):
        if dtype is not None:
            model.cast(dtype)
    dtypes = {a.dtype(), b.dtype()}
    if len(dtypes) > 1:
        raise ValueError(f"model A holds {a.dtype()} parameters and model B {b.dtype()}: pass dtype= to cast both")
    held = dtypes.pop()
    X = X.astype(held) if X.dtype.kind == "f" else X
    for model in (a, b):
        model.read(X)
    pairs = paired(a, b, mapping)
    if y is not None:
        _trajectories_fit(a, steps)
    found, notes = conventions(a, b, pairs)
    initialisers = [f"A's {a.layers[i].path!r} {a.layers[i].initialiser}, B's {b.layers[j].path!r} "
                    f"{b.layers[j].initialiser}" for i, j in pairs if a.layers[i].initialiser
                    and b.layers[j].initialiser and a.layers[i].initialiser != b.layers[j].initialiser]
    if initialisers:  # a convention, but not one this check's numbers see
        notes.append("initialisers differ (not in this check, which carries A's weights; two models trained from "
                     "their own starts differ from the first step): " + "; ".join(initialisers))
    training = Training(loss, optimizer, lr, momentum, weight_decay, steps, batch_size)
    if y is not None and steps:
        found += optimizer_conventions(a, b, training)
    notes += [f"A's {a.layers[i].path!r} holds {a.layers[i].layer.bias} bias vector(s) and B's {b.layers[j].path!r} "  # type: ignore[union-attr]
              f"{b.layers[j].layer.bias}: two are carried as their sum (what the cell adds), one as the first of "  # type: ignore[union-attr]
              "two with the second 0; training moves two biases' sum twice as far under SGD"
              for i, j in pairs if merged(a.layers[i], b.layers[j])]
    labels = {item.settings.get("function", item.kind) for model in (a, b) for item in model.layers}
    labels |= {item.fused for model in (a, b) for item in model.layers if item.fused}
    allowances = applicable(held, (a.framework, b.framework), optimizer, labels)
    layer_allowances = [name for name in allowances if ALLOWANCES[name].layers]  # the optimiser's: training only
    forward_allowed = allowed_tolerance(held, (a.framework, b.framework), layer_allowances, labels)["rtol"] \
        if layer_allowances else 0.0
    train_allowed = allowed_tolerance(held, (a.framework, b.framework), allowances, labels)["rtol"] if allowances \
        else 0.0
    report = PortReport(models={"A": _described(a), "B": _described(b)}, dtype=held, allowances=allowances,
                        pairs=[{"A": a.layers[i].path, "B": b.layers[j].path, "kind": a.layers[i].kind}
                               for i, j in pairs],
                        conventions=found, notes=notes, round_trip=_carry(a, b, pairs))
    start_a, state_a = a.params(), a.state()
    shadow = a if a.framework != "tensorflow" else b
    try:
        with a.without_dropout() as off_a, b.without_dropout() as off_b:
            if off_a or off_b:
                report.notes.append(f"dropout held at rate 0 in training mode (A's {off_a or 'none'}, B's "
                                    f"{off_b or 'none'}): each framework draws its own masks, so the rest is compared")
            _compared(a, b, pairs, X, y, held, shadow, report, found, training, forward_allowed, train_allowed)
    except BaseException:
        with contextlib.suppress(Exception):  # put back what can be; the first error is the one to say
            _restore(a, b, pairs, start_a, state_a)
        raise
    _restore(a, b, pairs, start_a, state_a)  # as documented: A its own weights, B A's
    report.seconds = time.perf_counter() - started
    return report


def _restore(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]], params: Mapping[str, np.ndarray],
             state: Mapping[str, np.ndarray]) -> None:
    a.set_params(params)
    a.set_state(state)
    b.set_params(renamed(params, a, b, pairs))
    b.set_state(renamed(state, a, b, pairs))


def _compared(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]], X: np.ndarray, y: np.ndarray | None,
              held: str, shadow: NativeModel, report: PortReport, found: list[Convention], training: Training,
              forward_allowed: float, train_allowed: float) -> None:
    """The forward in both modes, then (given targets) the training steps, into `report`."""
    outputs = {}
    for mode in ("eval", "train"):
        captured = {}
        for side, model in (("A", a), ("B", b)):
            with model.failures(X):
                captured[side] = model.capture(X, mode == "train")
        outputs[mode] = captured["A"][0]
        noise = None if held == "float64" else _noise(shadow, X, mode, captured["A" if shadow is a else "B"])
        report.forward.append(_forward(a, b, pairs, captured, mode, None if noise is None else
                                       _as_a(noise, a, b, pairs, shadow is b), held, forward_allowed, found))
    if y is not None and training.steps:
        _targets_fit(y, outputs["eval"], training.loss)
        report.training = _trained(a, b, pairs, X, y, training, held, shadow, report, train_allowed)


TRAJECTORY_BYTES = 2 * 2**30  # every step's parameters kept for three runs (A, B, the float64 shadow): at most this


def _trajectories_fit(model: NativeModel, steps: int) -> None:
    """A ValueError, before training, where `steps` steps of this model's parameters would not fit in memory."""
    values = sum(value.size for value in model.params().values())
    kept = 3 * 8 * values * steps
    if kept > TRAJECTORY_BYTES:
        most = max(1, TRAJECTORY_BYTES // (3 * 8 * max(values, 1)))
        raise ValueError(f"steps must be at most {most} for models of {values} parameters: {steps} steps keep "
                         f"{kept / 2**30:.1f} GiB of parameters (every step's, three runs); received: {steps}")


def _targets_fit(y: np.ndarray, output: np.ndarray, loss: str) -> None:
    """A ValueError unless the targets fit model A's output (canonical layout) for `loss`."""
    rows = len(y)
    if loss == "mse":
        if y.size != output.size:
            raise ValueError(f"targets hold {y.size // rows} value(s) per row and model A's output "
                             f"{output.size // rows}: for loss='mse' they must be as many (shape {output.shape})")
        return
    classes = output.shape[1] if output.ndim == 4 else output.shape[-1]
    positions = output.size // classes
    if y.size != positions or not np.array_equal(y, np.round(y)) or y.min() < 0 or y.max() >= classes:
        raise ValueError(f"targets must be class indices from 0 to {classes - 1}, one per output position "
                         f"({positions} in all; model A's output is {output.shape}); received: shape {y.shape}, "
                         f"from {y.min()} to {y.max()}")


def _as_a(noise: dict[str, float], a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]],
          from_b: bool) -> dict[str, float]:
    if not from_b:
        return noise
    names = {b.layers[j].path: a.layers[i].path for i, j in pairs}
    return {names.get(key, key): value for key, value in noise.items()}


def _described(model: NativeModel) -> dict[str, Any]:
    return {"framework": model.title, "class": model.model_class, "dtype": model.dtype(),
            "channels_last": model.channels_last,
            "layers": [{"path": item.path, "type": item.native_type, "layer": item.describe()}
                       for item in model.layers]}


def _carry(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]]) -> str:
    """Write A's parameters and state into B and B's back into A: "exact" where each then holds exactly what was
    written (two recurrent biases as their sum), else what changed. A ends holding its own again."""
    params, state = a.params(), a.state()
    for i, j in pairs:
        item_a, item_b = a.layers[i], b.layers[j]
        two = item_a if getattr(item_a.layer, "bias", None) == "two" else item_b
        if merged(item_a, item_b) and item_a.kind == "gru" and two is item_a:
            hidden = params[f"{item_a.path}.bias_hh"][2 * len(params[f"{item_a.path}.bias_hh"]) // 3:]
            if hidden.any():
                return (f"A's {item_a.path!r} holds a recurrent bias of the n gate (bias_hh's last third, inside r ⊙ "
                        f"(W_hn h + b_hn)) B's {item_b.path!r} has no place for: a GRU ports with one bias only where "
                        "b_hn = 0")
    sent = {**renamed(params, a, b, pairs), **renamed(state, a, b, pairs)}
    b.set_params(renamed(params, a, b, pairs))
    b.set_state(renamed(state, a, b, pairs))
    held = {**b.params(), **b.state()}
    for name, value in sent.items():
        if name not in held or not np.array_equal(held[name], value):
            return (f"B's {name} does not hold what was written (largest difference "
                    f"{relative(held.get(name, value), value):.3g})")
    a.set_params(renamed(b.params(), a, b, pairs, backwards=True))
    a.set_state(renamed(b.state(), a, b, pairs, backwards=True))
    again = {**renamed(a.params(), a, b, pairs), **renamed(a.state(), a, b, pairs)}
    for name, value in held.items():
        if not np.array_equal(again[name], value):
            return f"B's {name} written back into A comes back changed"
    a.set_params(params)
    a.set_state(state)
    if any(not np.array_equal(value, params[name]) for name, value in a.params().items()):
        return "A's parameters written back into A changed"
    return "exact"


def _trained(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]], X: np.ndarray, y: np.ndarray,
             training: Training, dtype: str, shadow: NativeModel, report: PortReport,
             allowed: float) -> TrainingReport:
    start, state = a.params(), a.state()
    y = y.astype(dtype) if y.dtype.kind == "f" or training.loss == "mse" else y
    with a.failures(X):
        run_a = a.train(X, y, training)
    end_state_a = a.state()
    with b.failures(X):
        run_b = b.train(X, y, training)
    end_state_b = b.state()
    noise: list[float] | None = None
    if dtype != "float64":
        noise = _training_noise(shadow, run_a if shadow is a else run_b, start, state, a, b, pairs, X, y, training)
    rows = []
    blame = None
    grads_a = renamed(run_a.grads, a, b, pairs, gradients=True)
    for step, (loss_a, loss_b, params_a, params_b) in enumerate(zip(run_a.losses, run_b.losses, run_a.params,
                                                                    run_b.params, strict=True), start=1):
        tol = tolerance(dtype, None if noise is None else noise[step - 1], allowed)
        difference, name = largest(renamed(params_a, a, b, pairs), params_b)  # B's names: two biases as one
        loss_difference = relative(np.asarray(loss_a), np.asarray(loss_b))
        rows.append(StepRow(step, loss_a, loss_b, loss_difference, difference, name, tol))
        if blame is None and (difference > tol or loss_difference > tol):
            blame = _training_blame(step, rows[-1], report, grads_a, run_b.grads, tol)
            if noise is not None and NOISE_MULTIPLE * noise[step - 1] > NOISE_CEILING:
                blame += (f" (float32's rounding alone moves this training by {noise[step - 1]:.3g} by then, measured "
                          "on a float64 shadow: compare it in float64, dtype='float64', or at a smaller lr)")
    grad_difference, grad_name = largest(grads_a, run_b.grads)
    state_difference, state_name = largest(renamed(end_state_a, a, b, pairs), end_state_b)
    tol = rows[-1].tolerance if rows else tolerance(dtype, None, allowed)
    if blame is None and state_difference > tol:
        causes = _causes(report, state_name)
        blame = (f"after {len(rows)} steps the parameters agree but the state differs: {state_name} by "
                 f"{state_difference:.3g} (tolerance {tol:.3g})" + (f": {causes}" if causes else ""))
    return TrainingReport(training.optimizer, training.loss, training.lr, rows, grad_difference, grad_name,
                          state_difference, state_name, tol, blame)


def _training_blame(step: int, row: StepRow, report: PortReport, grads_a: Mapping[str, np.ndarray],
                    grads_b: Mapping[str, np.ndarray], tol: float) -> str:
    where = f"step {step}: {row.parameter} {row.parameter_difference:.3g} apart (tolerance {tol:.3g})"
    if step > 1:
        causes = _causes(report, row.parameter)
        return (f"{where}; every step before agrees: a difference the steps carry and grow"
                + (f"; the conventions that differ there: {causes}" if causes else ""))
    train_forward = next((item for item in report.forward if item.mode == "train"), None)
    if row.loss_difference > tol or (train_forward is not None and not train_forward.agrees):
        return f"{where}: the training-mode forward differs (losses {row.loss_a:.6g} and {row.loss_b:.6g})"
    difference, name = largest(grads_a, grads_b)
    if difference > tol:
        return f"{where}: the gradients differ ({name} by {difference:.3g}), the forward agrees: the backward"
    causes = _causes(report, row.parameter)
    if causes:
        return f"{where}: losses and gradients agree, the update differs: {causes}"
    return (f"{where}: losses and gradients agree, the update differs: the optimisers' conventions (learning rate, "
            "momentum, weight decay coupled or decoupled, ε)")


def _causes(report: PortReport, name: str) -> str:
    """The conventions that differ at the layer holding B's parameter or state `name` (else the optimisers')."""
    layer = name.rpartition(".")[0]
    return "; ".join(item.line() for item in report.conventions if item.layer_b == layer) or "; ".join(
        item.line() for item in report.conventions if item.kind == "optimizer")


def _training_noise(shadow: NativeModel, run32: Trajectory, start: Mapping[str, np.ndarray],
                    state: Mapping[str, np.ndarray], a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]],
                    X: np.ndarray, y: np.ndarray, training: Training) -> list[float] | None:
    """Each step's float32 rounding error: the shadow side trained in float32 and in float64 from one start."""
    mine = dict(start) if shadow is a else renamed(start, a, b, pairs)
    mine_state = dict(state) if shadow is a else renamed(state, a, b, pairs)
    dtype = shadow.dtype()
    try:
        shadow.cast("float64")
        shadow.set_params(mine)
        shadow.set_state(mine_state)
        run64 = shadow.train(X.astype(np.float64) if X.dtype.kind == "f" else X,
                             y.astype(np.float64) if y.dtype.kind == "f" else y, training)
    except Exception:  # a model that does not train in float64: the fixed float32 tolerance then
        return None
    finally:
        shadow.cast(dtype)
    return [largest(p32, p64)[0] for p32, p64 in zip(run32.params, run64.params, strict=True)]
