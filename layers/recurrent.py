"""Recurrent layers over batch-first sequences (batch, steps, features), from a zero initial state: a plain RNN
(tanh), GRU and LSTM, giving the last step's output or every step's (`sequences`).

The canonical layout is torch's (torch/nn/modules/rnn.py): weight_ih (gates·H, F), weight_hh (gates·H, H), gates
in the order LSTM i, f, g, o; GRU r, z, n; and, by `bias`, two bias vectors ("two": bias_ih and bias_hh), one
("input": bias_ih alone, bias_hh ≡ 0) or none. The GRU is torch's and cuDNN's, the reset gate applied after the
recurrent product: n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)).

Where the frameworks part:
- one bias or two: torch and Gluon keep two (a model with one gets the other held at zero, not trained); for the
  LSTM and RNN the two only add, but as parameters they are not one: SGD moves their sum twice as far. Keras's
  LSTM and SimpleRNN keep one; Flax NNX's cells keep one (OptimizedLSTMCell on its recurrent Linear, SimpleCell on
  its input Linear, flax/nnx/nn/recurrent.py:315, :455). Each refuses the count it cannot hold, by name;
- Flax NNX's GRUCell has no recurrent bias at all (flax/nnx/nn/recurrent.py:578, `use_bias=False`): torch's b_hn,
  inside r ⊙ (…), has no place there, so a torch GRU ports to Flax only with bias_hh = 0 ("input");
- Keras's GRU keeps its gates as z, r, h (the canonical r, z, n reordered at the boundary) and, with
  reset_after=True (its default, torch's formulation), both biases in one (2, 3H) variable: bias_ih is its row 0,
  bias_hh its row 1 (Link.part); it cannot hold one bias (reset_after=False, with one, is the original
  formulation, the reset before the product: another model);
- kernels: Keras and Flax keep (in, gates·H), transposed at the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Link, Shape, Translator, positive_integer

BIASES = ("two", "input", "none")


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow for large |a|


def _check(layer: Layer) -> Recurrent:
    assert isinstance(layer, Recurrent)
    return layer


class _RecurrentTranslator(Translator):
    """Links by the canonical names; `refused` maps a bias option the framework cannot hold to its reason."""

    names: ClassVar[Mapping[str, str]]  # canonical name → path in the built module
    transposed: ClassVar[bool] = False  # kernels kept (in, gates·H)
    refused: ClassVar[Mapping[str, str]] = {}

    def refuses(self, layer: Layer) -> str | None:
        return self.refused.get(_check(layer).bias)

    def blocks(self, layer: Layer) -> tuple[int, ...] | None:
        return None

    def links_for(self, layer: Layer) -> Mapping[str, Link]:
        blocks = self.blocks(layer)
        return {name: Link(self.names[name], (1, 0) if self.transposed and name.startswith("weight") else None,
                           blocks) for name in _check(layer).params()}


@cache
def _torch_module() -> type:
    from torch import nn

    class Recurrent(nn.Module):
        def __init__(self, inner: nn.Module, sequences: bool) -> None:
            super().__init__()
            self.inner, self.sequences = inner, sequences

        def forward(self, x: Any) -> Any:
            out = self.inner(x)[0]  # (batch, steps, H)
            return out if self.sequences else out[:, -1]

    return Recurrent


class TorchRecurrent(_RecurrentTranslator):
    native_default = "nn.RNN/GRU/LSTM reset_parameters: U(±1/√H) for every weight and bias"
    names: ClassVar[Mapping[str, str]] = {"weight_ih": "inner.weight_ih_l0", "weight_hh": "inner.weight_hh_l0",
                                          "bias_ih": "inner.bias_ih_l0", "bias_hh": "inner.bias_hh_l0"}

    def build(self, layer: Layer, build: Build) -> Any:
        from torch import nn

        cell = _check(layer)
        options = {"batch_first": True, "bias": cell.bias != "none"}
        inner = (nn.RNN(cell.input_size, cell.hidden, nonlinearity="tanh", **options) if cell.kind == "rnn" else
                 getattr(nn, cell.kind.upper())(cell.input_size, cell.hidden, **options))
        module = _torch_module()(inner, cell.sequences)
        self._hold(module, cell)
        return module

    def _hold(self, module: Any, cell: Recurrent) -> None:
        if cell.bias == "input":  # the second bias held at zero, out of training
            module.inner.bias_hh_l0.requires_grad_(False)
            module.inner.bias_hh_l0.data.zero_()

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        native.inner.reset_parameters()  # U(±1/√H) for every weight and bias, from torch's global RNG
        held = getattr(native.inner, "bias_hh_l0", None)
        if held is not None and not held.requires_grad:  # bias=input: the second bias stays zero
            held.data.zero_()


@cache
def _gluon_block() -> type:
    from mxnet import gluon

    class Recurrent(gluon.HybridBlock):
        def __init__(self, inner: Any, sequences: bool) -> None:
            super().__init__()
            self._sequences = sequences
            with self.name_scope():
                self.inner = inner

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            out = self.inner(x)  # (batch, steps, H)
            return out if self._sequences else F.squeeze(F.slice_axis(out, axis=1, begin=-1, end=None), axis=1)

    return Recurrent


class GluonRecurrent(_RecurrentTranslator):
    native_default = "gluon.rnn layers: the model's default initialiser for the weights, zero biases"
    names: ClassVar[Mapping[str, str]] = {"weight_ih": "inner.l0_i2h_weight", "weight_hh": "inner.l0_h2h_weight",
                                          "bias_ih": "inner.l0_i2h_bias", "bias_hh": "inner.l0_h2h_bias"}

    def build(self, layer: Layer, build: Build) -> Any:
        from mxnet import gluon

        cell = _check(layer)
        held = {"i2h_bias_initializer": "zeros"} if cell.bias == "none" else {}
        if cell.bias != "two":  # a bias it does not have: zero from every initialiser, out of training
            held["h2h_bias_initializer"] = "zeros"
        options = {"layout": "NTC", "input_size": cell.input_size, **held}
        inner = (gluon.rnn.RNN(cell.hidden, activation="tanh", **options) if cell.kind == "rnn" else
                 getattr(gluon.rnn, cell.kind.upper())(cell.hidden, **options))
        for name in ("i2h_bias", "h2h_bias"):
            if f"{name}_initializer" in held:
                getattr(inner, f"l0_{name}").grad_req = "null"
        return _gluon_block()(inner, cell.sequences)


@cache
def _nnx_module() -> type:
    import jax.numpy as jnp
    from flax import nnx

    class Recurrent(nnx.Module):
        def __init__(self, rnn: Any, hidden: int, lstm: bool, sequences: bool) -> None:
            self.rnn, self.hidden, self.lstm, self.sequences = rnn, hidden, lstm, sequences

        def __call__(self, x: Any) -> Any:
            zeros = jnp.zeros((x.shape[0], self.hidden), dtype=x.dtype)  # the initial state, as torch's
            out = self.rnn(x, initial_carry=(zeros, zeros) if self.lstm else zeros)
            return out if self.sequences else out[:, -1]

    return Recurrent


class NnxRecurrent(_RecurrentTranslator):
    native_default = "nnx cells: lecun_normal input kernels, orthogonal recurrent kernels, zero biases"
    transposed = True
    refused: ClassVar[Mapping[str, str]] = {
        "two": "Flax NNX's cells keep one bias vector (bias=input)",
        "none": "Flax NNX's cells always keep a bias (bias=input)"}

    def links_for(self, layer: Layer) -> Mapping[str, Link]:
        # OptimizedLSTMCell keeps its bias on the recurrent Linear; SimpleCell and GRUCell on the input one
        side = "dense_h" if _check(layer).kind == "lstm" else "dense_i"
        return {"weight_ih": Link("rnn.cell.dense_i.kernel", (1, 0)),
                "weight_hh": Link("rnn.cell.dense_h.kernel", (1, 0)), "bias_ih": Link(f"rnn.cell.{side}.bias")}

    def build(self, layer: Layer, build: Build) -> Any:
        from flax import nnx

        cell = _check(layer)
        kind = {"rnn": nnx.SimpleCell, "gru": nnx.GRUCell, "lstm": nnx.OptimizedLSTMCell}[cell.kind]
        made = kind(cell.input_size, cell.hidden, dtype=build.dtype, param_dtype=build.params_in, rngs=build.rngs)
        return _nnx_module()(nnx.RNN(made, rngs=False), cell.hidden, cell.kind == "lstm", cell.sequences)


class KerasRecurrent(_RecurrentTranslator):
    native_default = ("keras recurrent layers: glorot_uniform kernels, orthogonal recurrent kernels, zero biases "
                      "(the LSTM's forget gate's 1: unit_forget_bias)")
    transposed = True
    names: ClassVar[Mapping[str, str]] = {"weight_ih": "cell.kernel", "weight_hh": "cell.recurrent_kernel",
                                          "bias_ih": "cell.bias", "bias_hh": "cell.bias"}

    def refuses(self, layer: Layer) -> str | None:
        cell = _check(layer)
        if cell.kind == "gru" and cell.bias == "input":
            return ("keras.layers.GRU(reset_after=True), torch's form, keeps both biases (one (2, 3H) variable), "
                    "and reset_after=False, with one, is another formulation: bias=two or none")
        if cell.kind != "gru" and cell.bias == "two":
            return f"keras.layers.{_KERAS[cell.kind]} keeps one bias vector (bias=input)"
        return None

    def links_for(self, layer: Layer) -> Mapping[str, Link]:
        found = dict(super().links_for(layer))
        if _check(layer).kind == "gru" and "bias_hh" in found:  # rows 0 and 1 of its (2, 3H) bias
            found["bias_ih"] = Link("cell.bias", None, self.blocks(layer), part=0)
            found["bias_hh"] = Link("cell.bias", None, self.blocks(layer), part=1)
        return found

    def blocks(self, layer: Layer) -> tuple[int, ...] | None:
        return (1, 0, 2) if _check(layer).kind == "gru" else None  # Keras's z, r, h against r, z, n

    def build(self, layer: Layer, build: Build) -> Any:
        import keras

        cell = _check(layer)
        options: dict[str, Any] = {"return_sequences": cell.sequences, "use_bias": cell.bias != "none",
                                   "dtype": build.dtype}
        if cell.kind == "gru":
            options["reset_after"] = True
        return getattr(keras.layers, _KERAS[cell.kind])(cell.hidden, **options)

    def native_init(self, native: Any, draws: Any, dtype: str) -> None:
        import keras

        cell = native.cell
        cell.kernel.assign(keras.initializers.GlorotUniform(seed=draws)(cell.kernel.shape, dtype))
        cell.recurrent_kernel.assign(keras.initializers.Orthogonal(seed=draws)(cell.recurrent_kernel.shape, dtype))
        if cell.use_bias:
            bias = np.zeros(cell.bias.shape, dtype)
            if getattr(cell, "unit_forget_bias", False):
                bias[cell.units: 2 * cell.units] = 1.0  # Keras's LSTM: the forget gate's bias starts at 1
            cell.bias.assign(bias)


_KERAS = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}


@dataclass(frozen=True)
class Recurrent(Layer):
    """A recurrent layer over (steps, input_size) examples, zero initial state; output (hidden,) or (steps,
    hidden) with `sequences`."""

    input_size: int
    hidden: int
    sequences: bool = False
    bias: str = "two"

    gates: ClassVar[int]
    kept_per_step: ClassVar[int]  # arrays of (batch, H) a NumPy step keeps for the backward
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchRecurrent, "mxnet": GluonRecurrent, "jax": NnxRecurrent, "tensorflow": KerasRecurrent}

    def __post_init__(self) -> None:
        positive_integer(self.kind, "input_size", self.input_size)
        positive_integer(self.kind, "hidden", self.hidden)
        if not isinstance(self.sequences, bool):
            raise ValueError(f"{self.kind} sequences must be True or False; received: {self.sequences!r}")
        if self.bias not in BIASES:
            raise ValueError(f"{self.kind} bias must be one of {', '.join(BIASES)}; received: {self.bias!r}")

    def describe(self) -> str:
        options = [str(self.input_size), str(self.hidden), *(["sequences=True"] if self.sequences else []),
                   *([f"bias={self.bias}"] if self.bias != "two" else [])]
        return f"{self.kind}({', '.join(options)})"

    def params(self) -> dict[str, Shape]:
        rows = self.gates * self.hidden
        shapes: dict[str, Shape] = {"weight_ih": (rows, self.input_size), "weight_hh": (rows, self.hidden)}
        if self.bias != "none":
            shapes["bias_ih"] = (rows,)
        if self.bias == "two":
            shapes["bias_hh"] = (rows,)
        return shapes

    gate_names: ClassVar[tuple[str, ...]] = ()

    def element_part(self, name: str, index: tuple[int, ...]) -> str:
        if name not in self.params() or not index or len(self.gate_names) < 2:
            return ""
        return f"the {self.gate_names[index[0] // self.hidden]} gate's rows"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2 or shape[1] != self.input_size:
            raise ValueError(f"{self.describe()} takes sequences of shape (steps, {self.input_size}); it follows an "
                             f"output of shape {shape}")
        return (shape[0], self.hidden) if self.sequences else (self.hidden,)

    def kept_values(self, output: Shape, given: Shape) -> int:
        # every step's input part and its gradient (gates·H each), and what the step keeps for its backward
        return given[0] * self.hidden * (2 * self.gates + self.kept_per_step)

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear
        from .shape import Flatten, Input

        return [[Input((4, 3)), cls(3, 5), Linear(5, 2)],
                [Input((3, 2)), cls(2, 4, sequences=True, bias="input"), Flatten(), Linear(12, 1)],
                [Input((3, 2)), cls(2, 3, bias="none"), Linear(3, 1)]]

    def _biases(self, params: Mapping[str, np.ndarray]) -> tuple[np.ndarray | float, np.ndarray | float]:
        return params.get("bias_ih", 0.0), params.get("bias_hh", 0.0)

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        bias_ih, bias_hh = self._biases(params)
        inputs = x @ params["weight_ih"].T + bias_ih  # every step's input part at once: (batch, steps, gates·H)
        h = np.zeros((len(x), self.hidden), dtype=x.dtype)
        steps = []
        state = self._start(h)
        for t in range(x.shape[1]):
            state, kept = self._step(params, inputs[:, t], state, bias_hh)
            steps.append(kept)
        outputs = np.stack([kept["h"] for kept in steps], axis=1)
        return (outputs if self.sequences else outputs[:, -1]), (x, steps)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        x, steps = saved
        d_inputs = np.empty((*x.shape[:2], self.gates * self.hidden), dtype=grad.dtype)
        d_weight_hh = np.zeros_like(params["weight_hh"])
        d_recurrent_bias = np.zeros(self.gates * self.hidden, dtype=grad.dtype)
        carried = self._no_gradient(grad)
        for t in reversed(range(x.shape[1])):
            dh = grad[:, t] if self.sequences else (grad if t == x.shape[1] - 1 else 0.0)
            d_in, d_rec, carried = self._step_back(params, steps[t], dh, carried)
            d_inputs[:, t] = d_in
            d_weight_hh += d_rec.T @ steps[t]["h_prev"]
            d_recurrent_bias += d_rec.sum(axis=0)
        grads = {"weight_ih": np.einsum("btg,btf->gf", d_inputs, x), "weight_hh": d_weight_hh}
        if self.bias != "none":
            grads["bias_ih"] = d_inputs.sum(axis=(0, 1))
        if self.bias == "two":
            grads["bias_hh"] = d_recurrent_bias
        return (d_inputs @ params["weight_ih"] if need_input_grad else None), grads

    # ---- one step and its backward, per cell type ----

    def _start(self, h: np.ndarray) -> Any:
        return h

    def _no_gradient(self, grad: np.ndarray) -> Any:
        return np.zeros((len(grad), self.hidden), dtype=grad.dtype)

    def _step(self, params: Mapping[str, np.ndarray], inputs: np.ndarray, state: Any,
              bias_hh: np.ndarray | float) -> tuple[Any, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _step_back(self, params: Mapping[str, np.ndarray], kept: dict[str, np.ndarray], dh: Any,
                   carried: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """(dL/d the step's input part, dL/d its recurrent part, what the step before gets)."""
        raise NotImplementedError

    def numpy_init(self, rng: np.random.Generator, params: Mapping[str, np.ndarray]) -> None:
        bound = 1 / np.sqrt(self.hidden)  # torch's U(±1/√H) for every array
        for value in params.values():
            value[...] = rng.uniform(-bound, bound, size=value.shape)


@dataclass(frozen=True)
class RNN(Recurrent):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)."""

    kind: ClassVar[str] = "rnn"
    gates: ClassVar[int] = 1
    kept_per_step: ClassVar[int] = 2

    def _step(self, params: Mapping[str, np.ndarray], inputs: np.ndarray, state: Any,
              bias_hh: np.ndarray | float) -> tuple[Any, dict[str, np.ndarray]]:
        h = np.tanh(inputs + state @ params["weight_hh"].T + bias_hh)
        return h, {"h": h, "h_prev": state}

    def _step_back(self, params: Mapping[str, np.ndarray], kept: dict[str, np.ndarray], dh: Any,
                   carried: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        d_pre = (dh + carried) * (1 - kept["h"] ** 2)
        return d_pre, d_pre, d_pre @ params["weight_hh"]


@dataclass(frozen=True)
class GRU(Recurrent):
    """r, z = σ(…), n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 − z) ⊙ n + z ⊙ h (torch's)."""

    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    gate_names: ClassVar[tuple[str, ...]] = ("reset", "update", "new")
    kept_per_step: ClassVar[int] = 6

    def _step(self, params: Mapping[str, np.ndarray], inputs: np.ndarray, state: Any,
              bias_hh: np.ndarray | float) -> tuple[Any, dict[str, np.ndarray]]:
        recurrent = state @ params["weight_hh"].T + bias_hh
        i_r, i_z, i_n = np.split(inputs, 3, axis=1)
        h_r, h_z, h_n = np.split(recurrent, 3, axis=1)
        r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
        n = np.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * state
        return h, {"h": h, "h_prev": state, "r": r, "z": z, "n": n, "h_n": h_n}

    def _step_back(self, params: Mapping[str, np.ndarray], kept: dict[str, np.ndarray], dh: Any,
                   carried: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        d = dh + carried
        r, z, n = kept["r"], kept["z"], kept["n"]
        d_n = d * (1 - z) * (1 - n * n)  # through tanh
        d_z = d * (kept["h_prev"] - n) * z * (1 - z)
        d_r = d_n * kept["h_n"] * r * (1 - r)
        d_recurrent = np.concatenate([d_r, d_z, d_n * r], axis=1)
        d_inputs = np.concatenate([d_r, d_z, d_n], axis=1)
        return d_inputs, d_recurrent, d * z + d_recurrent @ params["weight_hh"]


@dataclass(frozen=True)
class LSTM(Recurrent):
    """i, f, o = σ(…), g = tanh(…), c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c') (torch's gate order i, f, g, o)."""

    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    gate_names: ClassVar[tuple[str, ...]] = ("input", "forget", "cell", "output")
    kept_per_step: ClassVar[int] = 8

    def _start(self, h: np.ndarray) -> Any:
        return h, np.zeros_like(h)

    def _no_gradient(self, grad: np.ndarray) -> Any:
        zeros = np.zeros((len(grad), self.hidden), dtype=grad.dtype)
        return zeros, zeros

    def _step(self, params: Mapping[str, np.ndarray], inputs: np.ndarray, state: Any,
              bias_hh: np.ndarray | float) -> tuple[Any, dict[str, np.ndarray]]:
        h_prev, c_prev = state
        a_i, a_f, a_g, a_o = np.split(inputs + h_prev @ params["weight_hh"].T + bias_hh, 4, axis=1)
        i, f, g, o = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g), _sigmoid(a_o)
        c = f * c_prev + i * g
        squashed = np.tanh(c)
        h = o * squashed
        return (h, c), {"h": h, "h_prev": h_prev, "c_prev": c_prev, "i": i, "f": f, "g": g, "o": o, "tanh_c": squashed}

    def _step_back(self, params: Mapping[str, np.ndarray], kept: dict[str, np.ndarray], dh: Any,
                   carried: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        dh_next, dc_next = carried
        d_h = dh + dh_next
        i, f, g, o, squashed = kept["i"], kept["f"], kept["g"], kept["o"], kept["tanh_c"]
        d_c = dc_next + d_h * o * (1 - squashed * squashed)
        d_pre = np.concatenate([d_c * g * i * (1 - i), d_c * kept["c_prev"] * f * (1 - f), d_c * i * (1 - g * g),
                                d_h * squashed * o * (1 - o)], axis=1)
        return d_pre, d_pre, (d_pre @ params["weight_hh"], d_c * f)
