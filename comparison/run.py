"""Train one problem on each backend: shared mode (identical start and batches) or native mode."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends import Backend, Linear, RowName, get_backend
from ..backends.batches import EpochBatches
from ..backends.precision import numpy_dtype
from ..optimizers.training import LOSS_SCALE
from ..tasks import Problem
from . import reference, softmax_reference

Params = dict[str, np.ndarray]
INIT_MODES = ("shared", "native")
REFERENCE = "exact optimum"  # the `init` of the reference row: solved, not trained
OK = "ok"  # the status of a run that finished
MAX_CHECKPOINTS = 100  # parameter snapshots per run, for the parity-over-steps plot
MAX_CURVE_POINTS = 200  # points of the per-step loss curve; epochs evaluated on large data
MAX_EVALUATIONS = 50  # steps at which train and validation loss are evaluated, evenly spaced
EVALUATE_ROWS = 200_000  # above this many rows in the splits, evaluated once per epoch instead (it costs a pass)


@dataclass
class BackendResult:
    backend: str
    init: str  # "shared", or what the framework's own initialiser and loader drew
    status: str  # "ok", or how it stopped: diverged, failed, interrupted
    params: Params
    step_losses: np.ndarray  # every optimiser step's batch loss, before its update
    initial_loss: float  # on the whole training set, before training
    final_train_loss: float
    final_val_loss: float
    initial_function_error: float | None  # RMS error against the true function on the task's grid
    final_function_error: float | None
    epochs: int
    seconds: float  # the steady steps' time: without their first steps, data conversion or evaluation
    mode: str = "-"  # how the steps ran: eager or compiled ("-" for a row that was not trained)
    compile_seconds: float = float("nan")  # the first step at each batch size: tracing and compiling happen there
    compile_steps: int = 0  # how many steps compile_seconds covers (one per batch size)
    curve: list[tuple[float, int, float, float]] = field(default_factory=list)  # (epochs, steps, train, val loss)
    checkpoints: list[tuple[int, Params]] = field(default_factory=list)  # (steps taken, parameters)
    clock: list[tuple[int, float]] = field(default_factory=list)  # (steps taken, step seconds so far, compiling too)
    # classification: per split ("train", "val"), counts[true class, predicted class] of the final model
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    note: str = ""  # what the row's numbers need said beside them (a reference row without an optimum)
    # with weight decay: the training loss plus the L2 penalty on the row's parameters, what training minimises
    final_train_objective: float = float("nan")
    # reduced precision: the dtype of each layer's output, the parameters' dtype, and the loss scale's changes
    computed_in: list[str] = field(default_factory=list)
    params_dtype: str = ""
    loss_scales: list[tuple[int, float]] = field(default_factory=list)
    math_modes: dict[str, str] = field(default_factory=dict)  # where it ran, TF32, determinism, autotuning

    @property
    def steps(self) -> int:
        return len(self.step_losses)

    @property
    def steady_steps(self) -> int:
        """The steps `seconds` times."""
        return self.steps - self.compile_steps


def stopped_result(backend: str, status: str) -> BackendResult:
    """The row of a backend that raised or was interrupted: no numbers, only what happened."""
    nan = float("nan")
    return BackendResult(backend=backend, init="-", status=status, params={}, step_losses=np.empty(0),
                         initial_loss=nan, final_train_loss=nan, final_val_loss=nan, initial_function_error=None,
                         final_function_error=None, epochs=0, seconds=nan)


def build_backends(problem: Problem, rows: list[RowName] | list[str], options: dict[str, Any]) -> dict[str, Backend]:
    """Construct every backend first, so a bad option fails before any training starts; by row name
    (BACKEND[:MODE], whose MODE overrides options["mode"])."""
    built = {}
    for name in rows:
        row = RowName.parse(name)
        mode = {"mode": row.mode} if row.mode else {}
        built[str(row)] = get_backend(row.backend)(problem.spec, **{**options, **mode})
    return built


def validation(loss: Callable[[np.ndarray, np.ndarray], float], problem: Problem) -> float:
    """`loss` on the validation split; NaN (shown as a dash, saved as null) when nothing is held out."""
    return float(loss(problem.X_val, problem.y_val)) if len(problem.X_val) else float("nan")


def function_error(predict: Callable[[np.ndarray], np.ndarray], problem: Problem) -> float | None:
    """RMS error of `predict` against the task's true function on its grid; None when it has none."""
    if problem.X_grid is None or problem.f_grid is None:
        return None
    return float(np.sqrt(np.mean((predict(problem.X_grid) - problem.f_grid) ** 2)))


def confusion(predict: Callable[[np.ndarray], np.ndarray], problem: Problem) -> dict[str, np.ndarray]:
    """counts[true, predicted] on each split, the predicted class being the largest of `predict`'s logits
    (the backend's own forward pass); empty for a task without classes."""
    if problem.classes is None:
        return {}
    k = len(problem.classes)
    found = {}
    for split, X, y in (("train", problem.X_train, problem.y_train), ("val", problem.X_val, problem.y_val)):
        if not len(X):  # nothing held out: a matrix of no rows (its accuracy NaN, shown as a dash)
            found[split] = np.zeros((k, k), dtype=np.int64)
            continue
        predicted = np.argmax(predict(X), axis=1)
        found[split] = np.bincount(y[:, 0].astype(np.int64) * k + predicted, minlength=k * k).reshape(k, k)
    return found


NO_FINITE_OPTIMUM = "no finite optimum"  # the status of a reference row whose minimiser lies at infinity
# No reference row: least absolute deviations and logistic regression have no closed form solved here
UNSOLVED_LOSSES = ("l1", "bce-with-logits")


def reference_result(problem: Problem, options: dict[str, Any]) -> BackendResult | None:
    """For a single linear layer: the exact minimiser of the run's objective on the training split as the
    backends train on it, rounded to the run's dtype (comparison.reference and comparison.softmax_reference,
    solved in float64, no backend involved), with its losses and objective. None for other models."""
    trained_on = as_trained(problem, options["dtype"]) if options.get("dtype") else problem
    result = _reference_result(trained_on, options)
    if result is not None and result.params and options["weight_decay"]:
        result.final_train_objective = result.final_train_loss + l2_penalty(options["weight_decay"], result.params)
    return result


def as_trained(problem: Problem, dtype: str) -> Problem:
    """The problem's splits in `dtype`, as every backend loads them (data files are read in float64)."""
    splits = {name: getattr(problem, name).astype(numpy_dtype(dtype), copy=False)
              for name in ("X_train", "y_train", "X_val", "y_val")}
    return dataclasses.replace(problem, **splits)


def _reference_result(problem: Problem, options: dict[str, Any]) -> BackendResult | None:
    if options.get("loss") in UNSOLVED_LOSSES or options.get("label_smoothing") or options.get("class_weights") or (
            options.get("optimizer") == "adamw" and options.get("weight_decay")):
        return None  # no exact solver here (AdamW's decay is no objective's gradient): the rows compare with each other
    if len(problem.spec) != 1:
        return _baseline_result(problem, options) if problem.reference_features is not None else None
    layer = problem.spec[0]
    assert isinstance(layer, Linear)  # a one-layer spec is a Linear layer (make_spec requires one)
    if problem.classes is not None:
        return _softmax_reference(problem, layer, options)
    loss, delta = options["loss"], options["huber_delta"]
    optimum = reference.solve(problem.X_train, problem.y_train, bias=layer.bias, loss=loss, huber_delta=delta,
                              weight_decay=options["weight_decay"])
    return BackendResult(
        backend=optimum.name, init=REFERENCE, status=OK, params=optimum.params, step_losses=np.empty(0),
        initial_loss=float("nan"),
        final_train_loss=reference.mean_loss(problem.X_train, problem.y_train, optimum.params, loss, delta),
        final_val_loss=validation(lambda X, y: reference.mean_loss(X, y, optimum.params, loss, delta), problem),
        initial_function_error=None,
        final_function_error=function_error(lambda X: reference.predict(X, optimum.params), problem),
        epochs=0, seconds=float("nan"),
    )


def _baseline_result(problem: Problem, options: dict[str, Any]) -> BackendResult:
    """A linear model of the problem's reference features solved exactly (least squares, or the run's loss), no
    weight decay: a baseline of losses for a model that has no exact optimum, its parameters not comparable."""
    assert problem.reference_features is not None
    features = problem.reference_features
    loss, delta = options["loss"], options["huber_delta"]
    optimum = reference.solve(features(problem.X_train), problem.y_train, bias=True, loss=loss, huber_delta=delta,
                              weight_decay=0.0)
    return BackendResult(
        backend=problem.reference_name or optimum.name, init=REFERENCE, status=OK, params={},
        step_losses=np.empty(0), initial_loss=float("nan"),
        final_train_loss=reference.mean_loss(features(problem.X_train), problem.y_train, optimum.params, loss, delta),
        final_val_loss=validation(lambda X, y: reference.mean_loss(features(X), y, optimum.params, loss, delta),
                                  problem),
        initial_function_error=None, final_function_error=None, epochs=0, seconds=float("nan"),
        note="the best linear model of the same inputs, solved exactly on the training split: a baseline to beat")


def _softmax_reference(problem: Problem, layer: Linear, options: dict[str, Any]) -> BackendResult:
    assert problem.classes is not None
    labels = {split: y[:, 0].astype(np.int64) for split, y in (("train", problem.y_train), ("val", problem.y_val))}
    optimum = softmax_reference.solve(problem.X_train, labels["train"], len(problem.classes), bias=layer.bias,
                                      weight_decay=options["weight_decay"])
    nan = float("nan")
    if optimum.params is None:
        pairs = ", ".join(f"{problem.classes[a]}|{problem.classes[b]}" for a, b in optimum.separated[:6])
        more = f" and {len(optimum.separated) - 6} more pairs" if len(optimum.separated) > 6 else ""
        return BackendResult(
            backend=optimum.name, init=REFERENCE, status=NO_FINITE_OPTIMUM, params={}, step_losses=np.empty(0),
            initial_loss=nan, final_train_loss=nan, final_val_loss=nan, initial_function_error=None,
            final_function_error=None, epochs=0, seconds=nan,
            note=f"the training split separates classes {pairs}{more}: without weight decay the loss falls for "
                 "ever as the weights grow, so there is no optimum to compare with (give --weight-decay for one)")
    params = optimum.params
    return BackendResult(
        backend=optimum.name, init=REFERENCE, status=OK, params=params, step_losses=np.empty(0), initial_loss=nan,
        final_train_loss=softmax_reference.mean_cross_entropy(problem.X_train, labels["train"], params),
        final_val_loss=validation(lambda X, y: softmax_reference.mean_cross_entropy(X, labels["val"], params),
                                  problem),
        initial_function_error=None, final_function_error=None, epochs=0, seconds=nan,
        confusion=confusion(lambda X: softmax_reference.logits(X, params), problem))


def l2_penalty(weight_decay: float, params: dict[str, np.ndarray]) -> float:
    """½·wd·Σ‖p‖², summed in float64: the penalty of coupled L2 weight decay, as NumPy computes it."""
    return 0.5 * weight_decay * sum(float(np.vdot(value, value.astype(np.float64))) for value in params.values())


def train_objective(backend: Backend, train_loss: float) -> tuple[float, str]:
    """The training loss plus the backend's weight-decay penalty as its framework computes it (NaN without
    weight decay), and a note when it could not: a backend without the penalty hook has the penalty summed
    from its learned parameters, in NumPy. NaN too for a decoupled weight decay (adamw): no objective has it as
    its gradient."""
    if not backend.training.coupled_decay:
        return float("nan"), ""
    try:
        return train_loss + backend.weight_penalty(), ""
    except NotImplementedError:
        return train_loss + l2_penalty(backend.weight_decay, backend.get_params()), (
            f"final_train_objective: {backend.name} has no _penalty hook, so its penalty is summed from its "
            "learned parameters in NumPy (float64)")


def loss_curve(result: BackendResult, points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
    """Up to `points` points: the mean batch loss of the steps since the previous point, against steps taken
    and against the seconds of training so far (the clock's marks, interpolated between them)."""
    losses = result.step_losses
    if not losses.size:
        return {"step": [], "loss": [], "seconds": []}
    ends = np.unique(np.linspace(1, losses.size, min(losses.size, points)).round().astype(int))
    starts = np.concatenate([[0], ends[:-1]])
    clock = np.asarray(result.clock, dtype=float).reshape(-1, 2)
    seconds = np.interp(ends, clock[:, 0], clock[:, 1]) if len(clock) > 1 else np.full(ends.size, np.nan)
    with np.errstate(all="ignore"):  # a diverged run's last points are not finite: they are shown as such
        means = [float(np.mean(losses[a:b])) for a, b in zip(starts, ends, strict=True)]
    return {"step": ends.tolist(), "loss": means, "seconds": seconds.tolist()}


def _spaced(total: int, most: int) -> set[int]:
    """Up to `most` + 1 evenly spaced integers from 0 to total, both included."""
    return set(np.linspace(0, total, min(total, most) + 1).round().astype(int).tolist())


def scale_changes(scales: np.ndarray) -> list[tuple[int, float]]:
    """A loss scale after each step as its changes: (0, the first scale), then (step, the new scale) where it moved."""
    changes, last = [(0, LOSS_SCALE["initial"])], LOSS_SCALE["initial"]
    for step, scale in enumerate(scales.tolist(), start=1):
        if scale != last:
            changes.append((step, float(scale)))
            last = scale
    return changes


def train(backend: Backend, problem: Problem, init: str = "shared", seed: int = 0, record: bool = False,
          on_epoch: Callable[[], object] | None = None) -> BackendResult:
    """Shared: the task's initial parameters and batches. Native: the framework's own, seeded by `seed`.

    `record` also evaluates the loss curves and snapshots parameters along the way, outside the timing.
    A non-finite step loss stops the run: the result says where it diverged.
    """
    with np.errstate(all="ignore"):  # divergence is detected and reported below, not warned about
        return _train(backend, problem, init, seed, record, on_epoch)


def _train(backend: Backend, problem: Problem, init: str, seed: int, record: bool,
           on_epoch: Callable[[], object] | None) -> BackendResult:
    epoch_batches: EpochBatches
    if init == "shared":
        backend.set_params(problem.initial_params)
        epoch_batches, described = problem.epoch_batches, "shared"
    elif init == "native":
        backend.native_init(seed)
        epoch_batches = backend.native_batches(len(problem.X_train), problem.epoch_batches.batch_size,
                                               len(problem.epoch_batches), seed, problem.shuffle)
        described = backend.native_init_text()
    else:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}; received: {init!r}")
    backend.load(problem.X_train, problem.y_train, copy=False)  # a Problem's arrays are never written
    initial_loss = backend.training_loss()
    initial_function_error = function_error(backend.predict, problem)

    total_steps = len(epoch_batches) * epoch_batches.steps_per_epoch
    by_step = record and len(problem.X_train) + len(problem.X_val) <= EVALUATE_ROWS
    evaluate_steps = _spaced(total_steps, MAX_EVALUATIONS) - {0} if by_step else set()
    evaluate_at = _spaced(len(epoch_batches), MAX_CURVE_POINTS) if record and not by_step else set()
    snapshots = _spaced(total_steps, MAX_CHECKPOINTS) if record else set()
    snapshot_at = snapshots | evaluate_steps  # where a chunk of steps ends
    curve: list[tuple[float, int, float, float]] = (
        [(0.0, 0, initial_loss, validation(backend.loss, problem))] if record else [])
    checkpoints = [(0, backend.get_params())] if record else []
    step_losses: list[np.ndarray] = []
    clock = [(0, 0.0)]
    seconds, compile_seconds, compile_steps, steps, status, epochs_run = 0.0, 0.0, 0, 0, OK, 0
    sizes_seen: set[int] = set()
    for epoch, batches in enumerate(epoch_batches, start=1):
        epochs_run = epoch
        firsts = set()  # the first step at each batch size runs alone and is timed apart: a compiler traces it
        for i, batch in enumerate(batches):
            if len(batch) not in sizes_seen:
                sizes_seen.add(len(batch))
                firsts.add(i)
        cuts = sorted({i for i in range(1, len(batches)) if steps + i in snapshot_at}
                      | {c for i in firsts for c in (i, i + 1) if 0 < c < len(batches)})
        for start, stop in zip([0, *cuts], [*cuts, len(batches)], strict=True):
            began = time.perf_counter()
            losses = backend.train_epoch(batches[start:stop])
            took = time.perf_counter() - began
            if start in firsts:
                compile_seconds, compile_steps = compile_seconds + took, compile_steps + 1
            else:
                seconds += took
            if not np.isfinite(losses).all():
                first_bad = int(np.argmin(np.isfinite(losses)))
                finite = np.concatenate([[initial_loss], *step_losses, losses[:first_bad]])
                step_losses.append(losses[: first_bad + 1])
                status = (f"diverged at epoch {epoch}, step {steps + first_bad + 1} "
                          f"(last finite loss {finite[-1]:.3e})")
                break
            step_losses.append(losses)
            steps += stop - start
            clock.append((steps, seconds + compile_seconds))
            if steps in snapshots:
                checkpoints.append((steps, backend.get_params()))
            if steps in evaluate_steps:
                curve.append((steps / epoch_batches.steps_per_epoch, steps, backend.training_loss(),
                              validation(backend.loss, problem)))
        if status != OK:
            break
        if epoch in evaluate_at:
            curve.append((float(epoch), steps, backend.training_loss(), validation(backend.loss, problem)))
        if on_epoch is not None:
            on_epoch()
    final_loss = backend.training_loss()
    objective, objective_note = train_objective(backend, final_loss)
    low = backend.numerics.low
    return BackendResult(
        backend=backend.name,
        init=described,
        status=status,
        params={**backend.get_params(), **backend.get_state()},  # running statistics beside the parameters
        step_losses=np.concatenate(step_losses) if step_losses else np.empty(0),
        initial_loss=initial_loss,
        final_train_loss=final_loss,
        final_train_objective=objective,
        note=objective_note,
        final_val_loss=validation(backend.loss, problem),
        initial_function_error=initial_function_error,
        final_function_error=function_error(backend.predict, problem),
        confusion=confusion(backend.predict, problem) if status == OK else {},
        epochs=epochs_run,
        seconds=seconds,
        mode=backend.mode,
        compile_seconds=compile_seconds if compile_steps else float("nan"),
        compile_steps=compile_steps,
        curve=curve,
        checkpoints=checkpoints,
        clock=clock,
        computed_in=_computed_in(backend, problem) if low and status == OK else [],
        params_dtype=backend.numerics.params if low else "",
        loss_scales=scale_changes(backend.loss_scales_) if backend.numerics.scaled else [],
        math_modes=backend.math_modes(),
    )


def _computed_in(backend: Backend, problem: Problem) -> list[str]:
    """The dtype of each layer's output in a training forward of a few rows; [] for a backend without the hook."""
    try:
        return backend.computed_in(problem.X_train[:8])
    except NotImplementedError:
        return []
