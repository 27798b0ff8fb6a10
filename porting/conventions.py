"""Conventions before numbers: the settings two paired layers compute with, compared before anything runs, each
difference with what it does to the numbers. Many ports are wrong only here (BatchNorm's momentum and ε left at
a framework's default, gelu's approximation, padding)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from .native import Found, NativeModel, Training

# (layer kind, setting) → what a difference does; the settings are canonical (BatchNorm's momentum is the share of
# the old running value kept, whatever the framework calls it)
EFFECTS: dict[tuple[str, str], str] = {
    ("batchnorm", "momentum"): "the running statistics move at different rates: evaluation outputs part after the "
                               "first training step",
    ("batchnorm", "eps"): "every normalised output differs, most where a channel's variance is small",
    ("batchnorm", "unbiased_running_var"): "one keeps the batch variance × n/(n−1) in its running variance: "
                                           "evaluation outputs part after the first training step",
    **{(kind, "variance"): "E[x²] − E[x]² (Flax's default) loses digits to cancellation where a channel's mean is "
                           "large against its spread" for kind in ("batchnorm", "layernorm")},
    ("layernorm", "eps"): "every normalised output differs, most where a row's variance is small",
    ("conv2d", "padding"): "the outputs differ at the borders (or in size)",
    ("conv2d", "stride"): "the outputs differ in size", ("conv2d", "dilation"): "the kernels see different inputs",
    ("maxpool", "ceil_mode"): "the outputs differ in size", ("avgpool", "ceil_mode"): "the outputs differ in size",
    ("avgpool", "count_include_pad"): "averages over a padded window differ at the borders",
    ("maxpool", "padding"): "the outputs differ at the borders", ("avgpool", "padding"): "the outputs differ at the "
                                                                                         "borders",
    ("maxpool", "stride"): "the outputs differ in size", ("avgpool", "stride"): "the outputs differ in size",
    ("activation", "function"): "every output after it differs (gelu's tanh form is off by up to 5e-4 of the exact)",
    ("activation", "negative_slope"): "every negative input is scaled differently",
    **{(kind, "bias"): "two bias vectors (torch's, Gluon's) move their sum twice as far as one (Keras's LSTM, Flax's "
                       "cells) under SGD: a port holds the second at zero out of training (requires_grad_(False), "
                       "grad_req='null')" for kind in ("lstm", "gru", "rnn")},
    **{(kind, "gate activation"): "every gate differs (Keras 2 defaulted to hard_sigmoid)"
       for kind in ("lstm", "gru")},
    ("optimizer", "weight decay"): "coupled decay enters the momentum or Adam's moments, decoupled does not: the "
                                   "updates part from the first step",
    ("optimizer", "adam ε"): "the steps differ where √v is near ε, most in the first steps and for rarely updated "
                             "parameters",
    ("dropout", "rate"): "training draws different masks' densities; evaluation is the same",
}


@dataclass(frozen=True)
class Convention:
    """One setting two paired layers hold differently."""

    layer_a: str
    layer_b: str
    kind: str
    setting: str
    value_a: Any
    value_b: Any

    @property
    def effect(self) -> str:
        return EFFECTS.get((self.kind, self.setting), "the layers compute different things")

    def line(self) -> str:
        return (f"{self.kind} {self.setting}: A's {self.layer_a!r} {self.value_a!r}, B's {self.layer_b!r} "
                f"{self.value_b!r}: {self.effect}")

    def as_dict(self) -> dict[str, Any]:
        return {"layer_a": self.layer_a, "layer_b": self.layer_b, "kind": self.kind, "setting": self.setting,
                "value_a": repr(self.value_a), "value_b": repr(self.value_b), "effect": self.effect}


def _differences(a: Found, b: Found) -> list[Convention]:
    found = []
    for setting in sorted(set(a.settings) | set(b.settings)):
        value_a, value_b = a.settings.get(setting), b.settings.get(setting)
        if value_a != value_b:
            found.append(Convention(a.path, b.path, a.kind, setting, value_a, value_b))
    return found


def _shown(model: NativeModel, start: int, stop: int) -> list[Found]:
    """The layers model shows between its layers `start` and `stop` (the activation the first applies itself, as
    Keras's Dense(activation=…) does, first)."""
    shown = list(model.layers[start + 1:stop])
    if stop < len(model.layers) and model.layers[stop].flattens:
        last = model.layers[stop]
        shown.append(Found(f"{last.path} (its flatten)", None, last.module, last.native_type, kind="flatten"))
    if start >= 0 and model.layers[start].fused:
        first = model.layers[start]
        shown.insert(0, Found(f"{first.path} (its activation)", None, first.module, first.native_type,
                              kind="activation", settings={"function": first.fused}))
    return shown


def conventions(a: NativeModel, b: NativeModel, pairs: list[tuple[int, int]]) -> tuple[list[Convention], list[str]]:
    """Every setting that differs between paired layers, and between the layers without parameters each model shows
    between two paired ones (paired in order where both show the same kinds; a note where they do not)."""
    found: list[Convention] = []
    notes: list[str] = []
    hidden = {"A": 0, "B": 0}
    bounds = [(-1, -1), *pairs, (len(a.layers), len(b.layers))]
    for (start_a, start_b), (stop_a, stop_b) in itertools.pairwise(bounds):
        between_a = _shown(a, start_a, stop_a)
        between_b = _shown(b, start_b, stop_b)
        if [item.kind for item in between_a] == [item.kind for item in between_b]:
            for item_a, item_b in zip(between_a, between_b, strict=True):
                found.extend(_differences(item_a, item_b))
        elif between_a and between_b:
            where = (f"after A's {a.layers[start_a].path!r}" if start_a >= 0 else "before the first layer with "
                     "parameters")
            notes.append(f"{where}: A shows {[item.describe() for item in between_a]}, B "
                         f"{[item.describe() for item in between_b]}: not compared as settings")
        else:
            hidden["B" if between_a else "A"] += 1
        if stop_a < len(a.layers) and stop_b < len(b.layers):
            found.extend(_differences(a.layers[stop_a], b.layers[stop_b]))
    for side, count in hidden.items():
        if count:
            notes.append(f"model {side} shows no layer in {count} place(s) where the other shows activations, pooling "
                         "or a flatten: its forward calls functions there, which have no settings to compare; the "
                         "layer-by-layer outputs check what they compute")
    return found, notes


def optimizer_conventions(a: NativeModel, b: NativeModel, training: Training) -> list[Convention]:
    """How the two frameworks' optimisers differ for this training (weight decay's coupling, Adam's ε)."""
    mine, theirs = a.optimizer_settings(training), b.optimizer_settings(training)
    return [Convention("optimizer", "optimizer", "optimizer", setting, mine[setting], theirs[setting])
            for setting in mine if mine[setting] != theirs.get(setting)]
