"""What each row fitted: its parameters, its losses and objective, and how far it is from the reference."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..tasks import Problem
from .metrics import accuracy, steps_per_second, us_per_step
from .run import OK, REFERENCE, BackendResult

NOT_CONVERGED = 0.1  # a training loss 10 % above the exact optimum's ...
NOT_CONVERGED_PATH = 0.001  # ... and 0.1 % of the way from the start to it is "not converged"
# An MLP's parameters, a row of JSON each, are tabulated up to this many per row: a million (hidden 1000,1000)
# times five backends would make a results.json of over 500 MB, more than show and diff read.
MAX_TABULATED = 200_000
OBJECTIVE = "final_train_objective"  # the losses' column of a run with weight decay
OBJECTIVE_MEANS = (
    f"({OBJECTIVE} = final_train_loss + ½·weight_decay·Σ‖p‖² over every parameter, weights and biases alike:\n"
    " each optimiser adds weight_decay·p to every parameter's gradient, so this is what training minimises and\n"
    " what the exact optimum solves; no backend can end below it in this column. Each backend's penalty is\n"
    " computed by its own framework from its own parameters; the reference's in float64.)")


def _elements(name: str, value: np.ndarray) -> list[tuple[str, float]]:
    """One (label, value) per element: "0.weight[0,1]"."""
    value = np.asarray(value)
    labels = [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(value.shape)]
    return list(zip(labels, value.astype(np.float64).ravel().tolist(), strict=True))


def identifiable(problem: Problem) -> bool:
    """Whether a model's parameters are compared with the truth and printed with every run: a single linear
    layer that regresses (an MLP's are not identifiable; class weights: one logit's shift is free)."""
    return len(problem.spec) == 1 and problem.classes is None


def param_table(problem: Problem, results: list[BackendResult], relative: bool) -> pd.DataFrame:
    """Every element of every row's parameters (running statistics too), by canonical name. For a single
    linear regression layer against the true values and, with `relative`, the reference's; for other models
    the learned values alone (saved, and printed on request: `show --params`)."""
    if not identifiable(problem):
        if any(sum(value.size for value in result.params.values()) > MAX_TABULATED for result in results):
            return pd.DataFrame(columns=["backend", "parameter", "learned"])  # see MAX_TABULATED
        return pd.DataFrame([{"backend": result.backend, "parameter": label, "learned": value}
                             for result in results for name, learned in result.params.items()
                             for label, value in _elements(name, learned)], columns=["backend", "parameter", "learned"])
    columns = ["backend", "parameter", "true", "learned", "abs_error"] + (["optimum", "error_vs_optimum"] * relative)
    reference = next((r.params for r in results if r.init == REFERENCE), None)
    names = problem.settings.get("columns")  # a data file's feature names: w[height] rather than 0.weight[0,2]
    readable = {f"0.weight[0,{j}]": f"w[{name}]" for j, name in enumerate(names or [])} | (
        {"0.bias[0]": "b"} if names else {})
    rows = []
    for result in results:
        for name, learned in result.params.items():
            truth = problem.truth[name] if problem.truth else np.full(learned.shape, np.nan)
            fitted = dict(_elements(name, reference[name])) if relative and reference is not None else {}
            for (canonical, value), (_, true_value) in zip(_elements(name, learned), _elements(name, truth),
                                                           strict=True):
                label = readable.get(canonical, canonical)
                row: dict[str, Any] = {"backend": result.backend, "parameter": label, "true": true_value,
                                       "learned": value, "abs_error": abs(value - true_value)}
                if relative and reference is not None:
                    row["optimum"] = fitted[canonical]
                    row["error_vs_optimum"] = abs(value - row["optimum"])
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def loss_table(results: list[BackendResult], classify: bool = False) -> pd.DataFrame:
    """Each row's losses and timing; with weight decay, final_train_objective too: the training loss plus
    the L2 penalty, what each row minimises."""
    penalised = any(math.isfinite(r.final_train_objective) for r in results)
    rows = []
    for r in results:
        trained = r.init != REFERENCE
        accuracies = {f"{split}_accuracy": accuracy(r.confusion.get(split)) for split in ("train", "val")}
        rows.append({"backend": r.backend, "status": r.status, "mode": r.mode, "note": r.note,
                     "initial_loss": r.initial_loss, "final_train_loss": r.final_train_loss,
                     **({"final_train_objective": r.final_train_objective} if penalised else {}),
                     "final_val_loss": r.final_val_loss, **(accuracies if classify else {}),
                     "epochs": r.epochs, "steps": r.steps,
                     "compile_seconds": r.compile_seconds, "seconds": r.seconds,
                     "steps_per_s": steps_per_second(r) if trained else math.nan,
                     "us_per_step": us_per_step(r) if trained else math.nan})
    return pd.DataFrame(rows)


def function_table(results: list[BackendResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"backend": r.backend, "initial_function_error": r.initial_function_error,
          "final_function_error": r.final_function_error} for r in results if r.final_function_error is not None],
        columns=["backend", "initial_function_error", "final_function_error"],
    )


def convergence_note(result: BackendResult, optimum: BackendResult | None) -> str:
    """"not converged: …" when a finished backend's training loss (its objective, with weight decay: what
    the optimum minimises) is more than NOT_CONVERGED above the exact optimum's (the noise this model cannot
    fit on these data) and more than NOT_CONVERGED_PATH of the way from its start to it; empty otherwise,
    and for models without an exact optimum."""
    if optimum is None or not optimum.params or result.status != OK or result.init == REFERENCE:
        return ""  # a baseline's losses (an AR model's) are no optimum of this model
    penalised = math.isfinite(optimum.final_train_objective)
    what = "training objective" if penalised else "training loss"
    best, reached = ((optimum.final_train_objective, result.final_train_objective) if penalised else
                     (optimum.final_train_loss, result.final_train_loss))
    gap = reached - best
    if gap > NOT_CONVERGED * best and gap > NOT_CONVERGED_PATH * (result.initial_loss - best):
        return (f"not converged: {what} {reached:.4g} against the exact optimum's {best:.4g} "
                f"({reached / best:.3g}×; more epochs or a larger --lr)" if best > 0 else
                f"not converged: {what} {reached:.4g}, the exact optimum's is 0")
    return ""
