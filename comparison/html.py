"""report.html: one self-contained page (plotly's script inlined, no network needed) with a run's, a
sweep's or an explanation's settings and provenance, sortable tables and interactive figures."""

from __future__ import annotations

import html
import math
import shlex
from typing import Any

import numpy as np
import pandas as pd

from ..optimizers.training import described
from .fits import OBJECTIVE, OBJECTIVE_MEANS
from .numbers import formatted
from .report import TIMING, TIMING_TITLE, TITLES, abbreviated, diverged_step, notes, parity_tolerance, sharing
from .sweep import LOG_X, RATIO_FLOOR, X_SETTINGS, parity_grid, ratio_text, varying

SUMMARY_ELSEWHERE = ("mode", "compile_seconds", "seconds", "param_scale", "step_loss_scale")
FLOOR = 1e-18  # an exact match is drawn here on a log scale
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;
text-align:right}th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}th:hover{background:#e8e8e8}
td:first-child,th:first-child{text-align:left}.note{background:#fff6d6;padding:.5em 1em;border-left:4px solid #e0b000}
.bad{color:#b00020}.settings td{text-align:left;white-space:normal}.plot{min-height:420px}td{white-space:nowrap}
td .std{color:#666;font-size:.9em}td.text{white-space:normal;text-align:left;min-width:6em;max-width:24em}
.wide{overflow-x:auto;max-width:100%}
"""
# Click a column's header to sort by it (numbers as numbers, then text), again to reverse.
SORTING = """
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var table=th.closest('table'),body=table.tBodies[0],index=Array.prototype.indexOf.call(th.parentNode.children,th),
up=th.dataset.order!=='up';th.dataset.order=up?'up':'down';var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=a.cells[index].dataset.value||a.cells[index].textContent,
y=b.cells[index].dataset.value||b.cells[index].textContent,nx=parseFloat(x),ny=parseFloat(y);
var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return up?c:-c;});
rows.forEach(function(r){body.appendChild(r);});});});
"""


def page(title: str, sections: list[str]) -> str:
    from plotly.offline import get_plotlyjs

    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><h1>{html.escape(title)}</h1>"
            + "\n".join(sections) + f"<script>{SORTING}</script></body></html>\n")


def section(heading: str, *parts: str) -> str:
    return f"<section><h2>{html.escape(heading)}</h2>{''.join(parts)}</section>"


def settings_table(pairs: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(_text(value))}</td></tr>"
                   for key, value in pairs.items() if value is not None and value != "")
    return f"<table class='settings'><tbody>{rows}</tbody></table>"


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return abbreviated([_text(item) for item in value]).replace(",", ", ")
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def table(rows: list[dict[str, Any]] | pd.DataFrame, table_id: str) -> str:
    """A sortable table; numbers written as in the text tables (a value column to the digits that tell its
    values apart, a metric and its `_std` as "mean ± std"), the full value on hover and sorted by it."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return "<p>(none)</p>"
    shown = [str(column) for column in frame.columns if not (str(column).endswith("_std") and str(column)
                                                             .removesuffix("_std") in frame.columns)]
    # a header breaks after its underscores: final_train_loss need not be one column's width
    head = "".join(f"<th>{html.escape(column).replace('_', '_<wbr>')}</th>" for column in shown)
    columns = [_cells(column, frame[column].astype(object).tolist(),
                      frame[f"{column}_std"].tolist() if f"{column}_std" in frame else None) for column in shown]
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in zip(*columns, strict=True))
    return (f"<div class='wide'><table class='sortable' id='{table_id}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>")


def _cells(column: str, values: list[Any], spread: list[Any] | None) -> list[str]:
    def numeric(value: Any) -> bool:
        return isinstance(value, float | int | np.number) and not isinstance(value, bool)

    numbers = [float(value) if numeric(value) else math.nan for value in values]
    shown = iter(formatted(column, [number for number in numbers if math.isfinite(number)]))
    stds = [float(std) if numeric(std) else math.nan for std in spread or [math.nan] * len(values)]
    std_shown = iter(formatted(f"{column}_std", [std for std in stds if math.isfinite(std) and std != 0]))
    cells = []
    for value, number, std in zip(values, numbers, stds, strict=True):
        if numeric(value) and math.isfinite(number):
            text, full = next(shown), repr(number)
            if math.isfinite(std) and std != 0:
                # the spread on a line of its own: a column is as wide as its mean
                text, full = f"{text}<br><span class='std'>± {next(std_shown)}</span>", f"{full} ± {std!r}"
            cells.append(f"<td data-value='{number!r}' title='{full}'>{text}</td>")
        elif numeric(value):
            cells.append(f"<td data-value='{number!r}'>-</td>")
        else:
            text = "-" if value is None else str(value)
            bad = " bad" if text.startswith(("diverged", "failed", "crashed", "timed out", "lost")) else ""
            cells.append(f"<td class='text{bad}'>{html.escape(text)}</td>")
    return cells


def figure(fig: Any, div_id: str) -> str:
    """A plotly figure as a div; the page carries plotly's script once."""
    return str(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                           default_height=420, config={"displaylogo": False}))


def _go() -> Any:
    import plotly.graph_objects as go

    return go


# ---- a run ----

def run_page(report: dict[str, Any]) -> str:
    """A saved run: settings and provenance, notes, the tables, and its figures."""
    options, settings = report["options"], report["settings"]
    title = (f"backend-compare: {report['task']} · {options.get('precision') or options['dtype']} · "
             f"{options['optimizer']} lr={options['lr']:g}"
             f"{described(options)} · seeds {','.join(map(str, report['seeds']))}")
    provenance = report.get("provenance") or {}
    shown = {"task": report["task"], "seeds": report["seeds"], **{k: v for k, v in settings.items() if k != "seed"},
             **{k: v for k, v in options.items() if k != "parallel"},
             "workers": sharing(report) or "one backend trained at a time"}  # not a bare "parallel 2"
    sections = [section("Settings", settings_table(shown)),
                section("Provenance", settings_table({
                    "command": provenance.get("command"), "package": provenance.get("package"),
                    "commit": provenance.get("commit"), "started": provenance.get("started"),
                    "machine": provenance.get("machine") or report.get("machine"),
                    "data": provenance.get("data"), **{f"backend {name}": env for name, env in
                                                       (provenance.get("backends") or {}).items()},
                    "versions": report.get("versions")}))]
    said = [f"{row['backend']}: {row['status']}" for row in report["summary"] if row.get("status") != "ok"]
    said += notes(report)
    if said:
        sections.append(section("Notes", "".join(f"<p class='note'>{html.escape(note)}</p>" for note in said)))
    figures = run_figures(report)
    sections.append(section("Figures", *(figure(fig, name) for name, fig in figures.items())))
    for key, heading in (("summary", "Summary"), ("params", "Parameters"), ("losses", "Losses"),
                         ("classes", TITLES["classes"]),
                         ("parity", "Parity: largest absolute difference between backends"),
                         ("shadow", TITLES["shadow"]), ("layers", TITLES["layers"]),
                         ("loss_scale", TITLES["loss_scale"]), ("math_modes", TITLES["math_modes"]),
                         ("function", "Function error"), ("init", "Native initialisation")):
        if report.get(key) and key not in report.get("on_request", ()):  # an MLP's params: in params.csv
            penalised = key == "losses" and OBJECTIVE in report[key][0]
            explained = [f"<p>{html.escape(OBJECTIVE_MEANS)}</p>"] if penalised else []
            sections.append(section(heading, table(_columns(report[key], key), f"table-{key}"), *explained))
        if key == "losses" and report.get(key):  # apart, as in the text: one table would be too wide
            timing = [row for row in report[key] if row["backend"] != report.get("reference")]
            shared = f"<p>Timed while {html.escape(sharing(report))}.</p>" if sharing(report) else ""
            sections.append(section(TIMING_TITLE, shared,
                                    table(pd.DataFrame(timing)[_timing_columns(timing)], "table-timing")))
    return page(title, sections)


def _timing_columns(rows: list[dict[str, Any]]) -> list[str]:
    return [column for column in rows[0] if column in ("backend", "mode")
            or column.removesuffix("_std") in TIMING]


def _columns(rows: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """The table as shown: the losses without their timing (a table of its own), the summary without the
    compile and total seconds (in the timing table) and the scales the tolerances are computed at (the parity
    table holds the verdicts)."""
    frame = pd.DataFrame(rows)
    if key == "losses":
        return frame.drop(columns=[c for c in _timing_columns(rows) if c not in ("backend", "mode")])
    if key == "summary":
        return frame.drop(columns=[c for c in map(str, frame) if c.removesuffix("_std") in SUMMARY_ELSEWHERE])
    return frame


def run_figures(report: dict[str, Any]) -> dict[str, Any]:
    """plot-loss (per step, validation distinct), plot-time (against wall time), plot-parity (over steps,
    the tolerance as a line) and plot-error (each parameter's error); only those with data."""
    go = _go()
    steps, curves = pd.DataFrame(report.get("steps") or []), pd.DataFrame(report.get("curves") or [])
    status = {row["backend"]: str(row.get("status")) for row in report["summary"]}
    loss_name = report["options"]["loss"]
    figures = {}
    if not steps.empty or not curves.empty:
        loss, wall = go.Figure(), go.Figure()
        backends = list(dict.fromkeys([*steps.get("backend", []), *curves.get("backend", [])]))
        for index, backend in enumerate(backends):
            colour, width = _colour(index), 1.2 + 1.6 * (len(backends) - 1 - index)  # identical curves stay visible
            mine = steps[steps["backend"] == backend] if not steps.empty else steps
            if not mine.empty:
                band = "batch_loss_std" in mine and mine["batch_loss_std"].notna().any()
                for target, x in ((loss, "step"), (wall, "seconds")):
                    if band:
                        _band(target, mine[x], mine["batch_loss"], mine["batch_loss_std"], colour, backend)
                    target.add_trace(go.Scatter(x=mine[x], y=mine["batch_loss"], mode="lines", name=f"{backend} train",
                                                legendgroup=backend, line={"color": colour, "width": width}))
            epochs = curves[curves["backend"] == backend] if not curves.empty else curves
            if not epochs.empty and "step" in epochs:
                loss.add_trace(go.Scatter(x=epochs["step"], y=epochs["val_loss"], mode="lines+markers",
                                          name=f"{backend} validation", legendgroup=backend,
                                          line={"color": colour, "dash": "dash", "width": width},
                                          marker={"symbol": "diamond-open", "size": 9}))
            where = diverged_step(status.get(backend, ""))
            if where is not None:
                loss.add_vline(x=where, line={"color": colour, "dash": "dot"},
                               annotation_text=f"{backend} diverged at step {where}")
        loss.update_layout(title="Loss per optimiser step (solid: training batches; dashed, diamonds: validation)",
                           xaxis_title="optimiser step", yaxis_title=f"{loss_name} loss", yaxis_type="log")
        wall.update_layout(title="Training batch loss against seconds of training (compiling included)",
                           xaxis_title="seconds", yaxis_title=f"{loss_name} loss", yaxis_type="log")
        figures["plot-loss"] = loss
        if not steps.empty:
            figures["plot-time"] = wall
    trajectory = pd.DataFrame(report.get("trajectory") or [])
    if not trajectory.empty:
        parity = go.Figure()
        for index, ((a, b), rows) in enumerate(trajectory.groupby(["backend_a", "backend_b"], sort=False)):
            parity.add_trace(go.Scatter(x=rows["step"], y=np.maximum(rows["max_abs_param_diff"].astype(float), FLOOR),
                                        mode="lines", name=f"{a} vs {b}", line={"color": _colour(index)}))
        tolerance = parity_tolerance(report)
        parity.add_hline(y=tolerance, line={"color": "#b00020", "dash": "dash"},
                         annotation_text=f"{report['options']['dtype']} tolerance {tolerance:.1e}")
        parity.update_layout(title=f"Largest parameter difference between backends (0 drawn at {FLOOR:g})",
                             xaxis_title="optimiser step", yaxis_title="max |difference|", yaxis_type="log")
        figures["plot-parity"] = parity
    params = pd.DataFrame(report.get("params") or [])
    if not params.empty and "abs_error" in params:
        error = go.Figure()
        for index, (backend, rows) in enumerate(params.groupby("backend", sort=False)):
            error.add_trace(go.Bar(x=rows["parameter"], y=rows["abs_error"], name=backend,
                                   marker={"color": _colour(index)}))
        error.update_layout(title="Error of each parameter against the truth", barmode="group",
                            yaxis_title="|learned − true|", yaxis_type="log")
        figures["plot-error"] = error
    confusion = pd.DataFrame(report.get("confusion") or [])
    if not confusion.empty:
        figures["plot-confusion"] = confusion_figure(confusion[confusion["split"] == "val"])
    return figures


def confusion_figure(counts: pd.DataFrame) -> Any:
    """A heatmap per backend of the validation split: colour the share of each true class's rows (a row sums
    to 1), the count written in each cell."""
    from plotly.subplots import make_subplots

    go = _go()
    backends = list(dict.fromkeys(counts["backend"]))
    columns = min(3, len(backends))
    rows = -(-len(backends) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=backends, horizontal_spacing=0.08,
                           vertical_spacing=0.12)
    for index, backend in enumerate(backends):
        mine = counts[counts["backend"] == backend]
        matrix = mine.pivot_table(index="true", columns="predicted", values="count", sort=False).fillna(0)
        share = matrix.div(matrix.sum(axis=1).replace(0, np.nan), axis=0)
        figure.add_trace(go.Heatmap(z=share.to_numpy(), x=[str(c) for c in matrix.columns],
                                    y=[str(c) for c in matrix.index], text=matrix.to_numpy().astype(int),
                                    texttemplate="%{text}",
                                    zmin=0, zmax=1, colorscale="Blues", showscale=index == 0, name=backend,
                                    hovertemplate="true %{y}, predicted %{x}: %{text} rows<extra></extra>"),
                         row=index // columns + 1, col=index % columns + 1)
    figure.update_yaxes(autorange="reversed")  # every panel: the first true class on top, as in the tables
    figure.update_yaxes(title_text="true class", col=1)
    figure.update_xaxes(title_text="predicted class", row=rows)
    figure.update_layout(title="Confusion matrices on the validation split (colour: the share of the true class)",
                         height=360 * rows)
    return figure


def _band(target: Any, x: pd.Series, mean: pd.Series, std: pd.Series, colour: str, group: str) -> None:
    go = _go()
    upper, lower = (mean + std.fillna(0)).tolist(), (mean - std.fillna(0)).clip(lower=FLOOR).tolist()
    target.add_trace(go.Scatter(x=[*x, *x[::-1]], y=[*upper, *lower[::-1]], fill="toself", mode="lines",
                                line={"width": 0}, fillcolor=colour, opacity=0.2, name=f"{group} ± 1 std over seeds",
                                legendgroup=group, hoverinfo="skip"))


def _colour(index: int) -> str:
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    return palette[index % len(palette)]


# ---- a sweep ----

def sweep_page(meta: dict[str, Any], jobs: pd.DataFrame, summary: pd.DataFrame, differences: pd.DataFrame,
               curves: dict[str, dict[str, list[float]]], curves_label: str) -> str:
    go = _go()
    settings, reference = meta["settings"], meta["reference"]
    changing = varying(jobs, settings)
    constant = [name for name in settings if name not in changing]  # in the Settings table, not every row
    figures = {}
    x = next((name for name in X_SETTINGS if name in changing), None)
    others = [name for name in changing if name != x]
    label = summary[others].apply(lambda row: " ".join(f"{name}={row[name]}" for name in others), axis=1) \
        if others else pd.Series("", index=summary.index)
    loss = go.Figure()
    backends, panels = [str(b) for b in dict.fromkeys(summary["backend"])], [str(p) for p in dict.fromkeys(label)]
    for (backend, panel), rows in summary.assign(panel=label).groupby(["backend", "panel"], sort=False):
        rows = rows.sort_values(x) if x else rows
        where = rows[x] if x else list(range(len(rows)))
        name = f"{backend} {panel}".strip()
        rank = backends.index(str(backend))
        colour = _colour(rank)  # a colour per backend, a dash per value of the other settings
        loss.add_trace(go.Scatter(x=[*where, *list(where)[::-1]], y=[*rows["final_val_loss_ci_high"],
                                  *rows["final_val_loss_ci_low"][::-1]], fill="toself", mode="lines",
                                  line={"width": 0}, fillcolor=colour, opacity=0.2, legendgroup=name,
                                  name=f"{name} 95 % interval", hoverinfo="skip"))
        loss.add_trace(go.Scatter(x=where, y=rows["final_val_loss_mean"], mode="lines+markers", name=name,
                                  legendgroup=name,
                                  line={"color": colour, "width": 1.2 + 1.6 * (len(backends) - 1 - rank),
                                        "dash": DASHES[panels.index(str(panel)) % len(DASHES)]}))
    loss.update_layout(title="Final validation loss (mean over seeds, band: bootstrap 95 % interval)",
                       xaxis_title=x or "grid point", yaxis_title="final validation loss", yaxis_type="log",
                       xaxis_type="log" if x in LOG_X else None)
    figures["plot-sweep-loss"] = loss
    if (jobs["backend"] != reference).any():
        grid = parity_grid(jobs, changing, reference, meta["dtype"])
        figures["plot-sweep-parity"] = go.Figure(go.Heatmap(
            z=grid.shades, x=grid.backends, y=grid.labels, zmin=math.log10(RATIO_FLOOR), zmax=grid.top, zmid=0,
            colorscale="RdBu_r", text=[[ratio_text(v) for v in row] for row in grid.ratios], texttemplate="%{text}",
            colorbar={"title": "÷ tolerance", "tickvals": grid.ticks, "ticktext": [
                f"{10.0 ** tick:g}×" + (" (tolerance)" if tick == 0 else "") for tick in grid.ticks]},
            hovertemplate="%{x} at %{y}: %{text} its tolerance<extra></extra>")).update_layout(
            title=f"Largest |parameter − {reference}'s| over seeds, in multiples of the pair's tolerance "
                  f"(blue within, red beyond; 0 drawn at {RATIO_FLOOR:g}×)")
    timing = go.Figure()
    points = summary[changing].apply(lambda row: " ".join(f"{name}={row[name]}" for name in changing), axis=1) \
        if changing else pd.Series("all", index=summary.index)
    for index, (backend, rows) in enumerate(summary.assign(point=points).groupby("backend", sort=False)):
        above = (rows["us_per_step_ci_high"] - rows["us_per_step_mean"]).fillna(0)
        below = (rows["us_per_step_mean"] - rows["us_per_step_ci_low"]).fillna(0)
        timing.add_trace(go.Scatter(x=rows["point"], y=rows["us_per_step_mean"], name=backend, mode="markers",
                                    marker={"color": _colour(index), "size": 10},
                                    error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below}))
    timing.update_layout(title="µs per steady step (mean over seeds; whiskers: 95 % interval)", scattermode="group",
                         yaxis_type="log", yaxis_title="µs per step")
    figures["plot-sweep-time"] = timing
    if curves:
        steps_figure, wall = go.Figure(), go.Figure()
        for index, (backend, curve) in enumerate(curves.items()):
            steps_figure.add_trace(go.Scatter(x=curve["step"], y=curve["loss"], name=backend,
                                              line={"color": _colour(index)}))
            wall.add_trace(go.Scatter(x=curve["seconds"], y=curve["loss"], name=backend,
                                      line={"color": _colour(index)}))
        steps_figure.update_layout(title=f"Loss per step at {curves_label}", xaxis_title="optimiser step",
                                   yaxis_type="log")
        wall.update_layout(title=f"Loss against seconds of training at {curves_label}", xaxis_title="seconds",
                           yaxis_type="log")
        figures["plot-sweep-steps"], figures["plot-sweep-wall"] = steps_figure, wall
    described = {key: meta.get(key) for key in ("executor", "address", "backends", "reference", "dtype", "settings")}
    sections = [section("Settings", settings_table({"command": shlex.join(["compare.py", "sweep", *meta["command"]]),
                                                    **described, "jobs": len(jobs)})),
                section("Figures", *(figure(fig, name) for name, fig in figures.items())),
                section("Summary over seeds", "<p>Each metric's mean ± standard deviation over the seeds (the "
                        "settings that do not vary are above); summary.csv holds the medians and 95 % intervals "
                        "too.</p>", table(_over_seeds(summary, constant), "table-summary")),
                section(f"Against {reference}, paired by seed",
                        table(differences.drop(columns=[*constant, "reference"], errors="ignore"), "table-paired"))]
    failed = jobs[jobs["status"] != "ok"]
    if len(failed):
        sections.insert(1, section("Jobs that did not finish", table(failed, "table-failed")))
    return page(f"backend-compare sweep: {jobs['task'].iloc[0]} · {len(jobs)} jobs", sections)


def _over_seeds(summary: pd.DataFrame, constant: list[str]) -> pd.DataFrame:
    """The sweep's summary as shown: the settings that vary, each metric's mean and std (one column, none
    for a metric no job has); the medians and 95 % intervals stay in summary.csv (and the figures' bands)."""
    stats = ("_mean", "_std", "_median", "_ci_low", "_ci_high")
    columns = [str(column) for column in summary]
    shown = summary[[c for c in columns if not c.endswith(stats) and c not in constant]].copy()
    for metric in dict.fromkeys(c.removesuffix("_mean") for c in columns if c.endswith("_mean")):
        if summary[f"{metric}_mean"].notna().any():  # a metric no job has (a function error of linreg): none
            shown[metric], shown[f"{metric}_std"] = summary[f"{metric}_mean"], summary[f"{metric}_std"]
    return shown


# ---- an explanation ----

def explain_page(header: dict[str, Any], findings: list[Any], text: str) -> str:
    """Where backends part ways: each pair's verdict, its first differing step and stage, and the cause."""
    rows = [{"backends": f"{f.backend_a} vs {f.backend_b}", "verdict": "agree" if f.agree else "differ",
             "first differing step": "-" if f.step is None else str(f.step), "stage": f.stage or "-",
             "of tolerance": f.largest,
             "cause": f.cause or "-"} for f in findings]
    options = header["options"]
    return page(f"backend-compare explain: {header['task']} · {options['dtype']} · {options['optimizer']}",
                [section("Settings", settings_table({"task": header["task"], **header["settings"], **options})),
                 section("Findings", table(rows, "table-findings"), f"<pre>{html.escape(text)}</pre>")])
