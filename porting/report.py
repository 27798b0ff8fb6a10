"""What check_port found: printable, JSON-serialisable, and a page in the suite's HTML style."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tabulate import tabulate

from .conventions import Convention


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


@dataclass
class LayerRow:
    """One paired layer in one forward: how far its input and output are apart, and what they may be."""

    layer_a: str
    layer_b: str
    kind: str
    input_difference: float
    output_difference: float | None  # None: not comparable (one applies an activation the other's forward hides)
    tolerance: float

    @property
    def agrees(self) -> bool:
        return self.input_difference <= self.tolerance and (self.output_difference is None
                                                            or self.output_difference <= self.tolerance)


@dataclass
class Forward:
    """The same inputs through both models in one mode."""

    mode: str  # "eval" or "train"
    rows: list[LayerRow]
    output_difference: float
    tolerance: float
    blame: str | None = None  # where they first part, and why it is local

    @property
    def agrees(self) -> bool:
        return self.blame is None


@dataclass
class StepRow:
    step: int
    loss_a: float
    loss_b: float
    loss_difference: float
    parameter_difference: float
    parameter: str  # the parameter furthest apart
    tolerance: float


@dataclass
class Training:
    optimizer: str
    loss: str
    lr: float
    steps: list[StepRow]
    gradient_difference: float  # the first step's, largest over parameters
    gradient: str
    state_difference: float  # running statistics after the last step
    state: str
    tolerance: float
    blame: str | None = None

    @property
    def agrees(self) -> bool:
        return self.blame is None


@dataclass
class PortReport:
    """A port check's findings. `agrees` is the verdict (`--check` exits 0 on it); `first_difference` says where the
    models first part; `conventions` lists every setting paired layers hold differently."""

    models: dict[str, dict[str, Any]]
    dtype: str
    pairs: list[dict[str, str]]
    conventions: list[Convention]
    notes: list[str]
    round_trip: str  # "exact", or where A → B → A changed a value
    allowances: list[str] = field(default_factory=list)  # the suite's named allowances that widen the tolerances
    forward: list[Forward] = field(default_factory=list)
    training: Training | None = None
    seconds: float = 0.0

    @property
    def agrees(self) -> bool:
        return (self.round_trip == "exact" and all(item.agrees for item in self.forward)
                and (self.training is None or self.training.agrees))

    @property
    def first_difference(self) -> str | None:
        if self.round_trip != "exact":
            return f"carrying the weights: {self.round_trip}"
        for item in self.forward:
            if item.blame:
                return f"forward ({item.mode} mode): {item.blame}"
        return self.training.blame if self.training is not None else None

    @property
    def verdict(self) -> str:
        if self.agrees:
            return (f"the port agrees within noise: {len(self.pairs)} paired layers, forward in "
                    f"{' and '.join(item.mode for item in self.forward)} mode"
                    + (f", {len(self.training.steps)} training steps" if self.training else ""))
        return f"the port differs: {self.first_difference}"

    # ---- outputs ----

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict, "agrees": self.agrees, "first_difference": self.first_difference,
            "dtype": self.dtype, "models": self.models, "pairs": self.pairs,
            "conventions": [item.as_dict() for item in self.conventions], "notes": self.notes,
            "round_trip": self.round_trip, "allowances": self.allowances,
            "forward": [{**asdict(item), "agrees": item.agrees} for item in self.forward],
            "training": None if self.training is None else {**asdict(self.training), "agrees": self.training.agrees},
            "seconds": self.seconds,
        }

    def to_json(self) -> str:
        """Strict JSON: an infinite or NaN difference is written as the text "inf" or "nan"."""
        return json.dumps(_finite(self.to_dict()), indent=2, default=str, allow_nan=False)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The report's tables as rows, for text and HTML alike."""
        layers = [{"model": side, "layer": row["path"], "framework layer": row["type"], "reads as": row["layer"]}
                  for side, model in self.models.items() for row in model["layers"]]
        forward = [{"mode": item.mode, "A": row.layer_a, "B": row.layer_b, "kind": row.kind,
                    "input diff": f"{row.input_difference:.3g}",
                    "output diff": "—" if row.output_difference is None else f"{row.output_difference:.3g}",
                    "tolerance": f"{row.tolerance:.3g}", "agrees": "yes" if row.agrees else "NO"}
                   for item in self.forward for row in item.rows]
        steps = [] if self.training is None else [
            {"step": row.step, "loss A": row.loss_a, "loss B": row.loss_b, "loss diff": row.loss_difference,
             "parameters diff": row.parameter_difference, "furthest (B's name)": row.parameter,
             "tolerance": row.tolerance}
            for row in self.training.steps]
        return {"Layers": layers, "Forward, layer by layer (relative differences)": forward,
                "Training": steps}

    def __str__(self) -> str:
        models = " → ".join(f"{side}: {model['framework']} {model['class']}" for side, model in self.models.items())
        lines = [f"port check · {models} · {self.dtype} · {self.seconds:.1f} s", f"verdict: {self.verdict}", ""]
        lines += ["Conventions that differ" if self.conventions else "Conventions: every paired setting is the same"]
        lines += [f"  - {item.line()}" for item in self.conventions]
        lines += [f"  note: {note}" for note in self.notes]
        if self.allowances:
            lines += [f"Allowances (backends/tolerances.py): {', '.join(self.allowances)}"]
        lines += ["", f"Weights carried A → B and back: {self.round_trip}"]
        for title, rows in self.tables().items():
            if rows:
                lines += ["", title, tabulate(rows, headers="keys", floatfmt=".3g", showindex=False)]
        if self.training is not None:
            lines += ["", f"first step's gradients: largest difference {self.training.gradient_difference:.3g} "
                          f"({self.training.gradient or 'none'}); state after training "
                          f"{self.training.state_difference:.3g} ({self.training.state or 'none'})"]
        for item in self.forward:
            if item.blame:
                lines += [f"forward ({item.mode}): {item.blame}"]
        if self.training is not None and self.training.blame:
            lines += [f"training: {self.training.blame}"]
        return "\n".join(lines)

    def html(self) -> str:
        from html import escape

        from ..comparison.html import page, section, settings_table, table

        head = settings_table({"verdict": self.verdict, "dtype": self.dtype, "seconds": round(self.seconds, 2),
                               **{f"model {side}": f"{model['framework']} {model['class']}"
                                  for side, model in self.models.items()}})
        conventions = "".join(f"<li>{escape(item.line())}</li>" for item in self.conventions) or "<li>none</li>"
        notes = "".join(f"<li>{escape(note)}</li>" for note in self.notes)
        sections = [section("Port", head), section("Conventions that differ", f"<ul>{conventions}{notes}</ul>"),
                    section("Weights", f"<p>carried A → B and back: {escape(self.round_trip)}</p>")]
        for index, (title, rows) in enumerate(self.tables().items()):
            if rows:
                sections.append(section(title, table(rows, f"port-{index}")))
        return page("Port check", sections)
