"""Turn backend results into pandas tables and render them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from comparison.run import BackendResult
from tasks import Problem

FORMATS = ("table", "markdown", "csv", "json")
TITLES = {"params": "Parameters", "function": "Function error on the held-out grid (RMS)", "losses": "Losses",
          "init": "Native initialisation", "summary": "Summary"}


def _elements(name: str, value: np.ndarray) -> list[tuple[str, float]]:
    """One (label, value) per element: "0.weight[0,1]"."""
    return [(f"{name}[{','.join(map(str, index))}]", float(value[index])) for index in np.ndindex(value.shape)]


def param_table(problem: Problem, results: list[BackendResult]) -> pd.DataFrame:
    """Learned against true parameters, for a single linear layer (an MLP's are not identifiable)."""
    rows = []
    if len(problem.spec) > 1:
        results = []
    for result in results:
        for name, learned in result.params.items():
            truth = problem.truth[name] if problem.truth else np.full(learned.shape, np.nan)
            for (label, value), (_, true_value) in zip(_elements(name, learned), _elements(name, truth)):
                rows.append({"backend": result.backend, "parameter": label, "true": true_value,
                             "learned": value, "abs_error": abs(value - true_value)})
    return pd.DataFrame(rows, columns=["backend", "parameter", "true", "learned", "abs_error"])


def loss_table(results: list[BackendResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"backend": r.backend, "initial_loss": r.initial_loss, "final_train_loss": r.final_train_loss,
          "final_val_loss": r.final_val_loss, "epochs": r.epochs, "seconds": r.seconds} for r in results],
        columns=["backend", "initial_loss", "final_train_loss", "final_val_loss", "epochs", "seconds"],
    )


def function_table(results: list[BackendResult]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"backend": r.backend, "initial_function_error": r.initial_function_error,
          "final_function_error": r.final_function_error} for r in results if r.final_function_error is not None],
        columns=["backend", "initial_function_error", "final_function_error"],
    )


def init_table(results: list[BackendResult]) -> pd.DataFrame:
    return pd.DataFrame([{"backend": r.backend, "initialisation and batches": r.init}
                         for r in results if r.init != "shared"], columns=["backend", "initialisation and batches"])


def summary_table(params: pd.DataFrame, function: pd.DataFrame, losses: pd.DataFrame) -> pd.DataFrame:
    max_error = params.groupby("backend", sort=False)["abs_error"].max().rename("max_abs_param_error")
    final_function = function.set_index("backend")["final_function_error"].rename("function_error")
    summary = losses.set_index("backend").join(max_error).join(final_function).reset_index()
    return summary[["backend", "final_train_loss", "final_val_loss", "max_abs_param_error", "function_error",
                    "seconds"]]


def build_tables(problem: Problem, results: list[BackendResult]) -> dict[str, pd.DataFrame]:
    params, function, losses = param_table(problem, results), function_table(results), loss_table(results)
    return {"params": params, "function": function, "losses": losses, "init": init_table(results),
            "summary": summary_table(params, function, losses)}


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values at full precision, NaN as None (JSON null)."""
    return [{key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in row.items()}
            for row in table.astype(object).to_dict(orient="records")]


def render(tables: dict[str, pd.DataFrame], fmt: str, header: dict[str, Any]) -> str:
    """The tables as text in `fmt`; `header` (task, settings) goes into JSON and titles."""
    if fmt == "json":
        document = {**header, **{key: records(table) for key, table in tables.items()}}
        return json.dumps(document, indent=2)
    shown = {key: tables[key] for key in ("params", "function", "losses", "init") if len(tables[key])}
    if fmt == "csv":
        return "\n".join(table.to_csv(index=False) for table in shown.values())
    if fmt == "markdown":
        return "\n\n".join(f"### {TITLES[key]}\n\n{table.to_markdown(index=False, floatfmt='.6g')}"
                           for key, table in shown.items()) + "\n"
    return "\n\n".join(f"{TITLES[key]}\n{table.to_string(index=False, float_format=lambda x: f'{x:.6g}')}"
                       for key, table in shown.items()) + "\n"
