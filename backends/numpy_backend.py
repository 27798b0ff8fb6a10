"""NumPy backend: forward, backward and optimiser updates derived by hand, no autograd."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..layers import Layer
from ..optimizers.numpy_optimizer import NumpyOptimizer
from .base import Backend, Params
from .batches import shuffled_epochs
from .state import initial_state


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, smoothing: float = 0.0,
                   each: bool = False) -> tuple[Any, np.ndarray]:
    """Mean −Σₖ qₖ log softmax(logits)ₖ and its gradient (softmax − q) / n, q the one-hot label, or with label
    smoothing ε, (1 − ε)·one-hot + ε/K. The largest logit is subtracted first: exp then cannot overflow, and
    log Σ exp keeps its precision. `each`: each row's loss rather than their mean."""
    n, classes = logits.shape
    rows, picked = np.arange(n), labels[:, 0].astype(np.intp)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1)
    # −Σₖ qₖ (shiftedₖ − log total) = log total − (1 − ε)·shifted[label] − ε/K·Σₖ shiftedₖ
    per_row = np.log(total) - shifted[rows, picked]
    if smoothing:
        per_row = per_row + smoothing * shifted[rows, picked] - smoothing / classes * shifted.sum(axis=1)
    grad = exp / total[:, None]
    grad[rows, picked] -= 1.0 - smoothing
    if smoothing:
        grad -= smoothing / classes
    return (per_row if each else float(np.mean(per_row))), grad / n


class NumpyBackend(Backend):
    name = "numpy"
    framework = "numpy"
    replay = True
    native_init_description = (
        "U(±1/√fan_in) weights and biases from numpy.random.default_rng(seed) (no framework default)")
    modes = ("eager", "compiled")  # nothing to compile: both run the same code, a baseline for the others
    keeps_state = True

    @classmethod
    def translates(cls, layer: Layer | type[Layer]) -> bool:
        return True  # every layer type carries its NumPy forward and backward

    def _build(self) -> None:
        self._params = {name: np.zeros(shape, self.dtype) for name, shape in self._shapes.items()}
        self._state = {name: np.array(value, self.dtype) for name, value in initial_state(self.spec).items()}
        # Per layer: the layer, its parameters and state by the layer's own names (views of self._params and
        # self._state, which every update changes in place) and its parameters' canonical names, so a step
        # formats no names.
        self._plan = [(layer, {**{short: self._params[f"{index}.{short}"] for short in layer.params()},
                               **{short: self._state[f"{index}.{short}"] for short in layer.state()}},
                       {short: f"{index}.{short}" for short in layer.params()})
                      for index, layer in enumerate(self.spec)]
        self._native_init(0)  # like the frameworks, a new model starts from its default initialiser

    def _get_params(self) -> Params:
        return self._params

    def _set_params(self, params: Params) -> None:
        for name, value in params.items():
            self._params[name][...] = value

    def _get_state(self) -> Params:
        return self._state

    def _set_state(self, state: Params) -> None:
        for name, value in state.items():
            self._state[name][...] = value

    def _native_init(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        for layer, params, _ in self._plan:
            layer.numpy_init(rng, params)

    def _reset_optimizer(self) -> None:
        self._optimizer = NumpyOptimizer(self.training, self._params)  # updates self._params in place

    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[list[np.ndarray]]:
        return iter(shuffled_epochs(np.random.default_rng(seed), n_rows, batch_size, epochs, shuffle))

    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, self._y = X, y

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._forward(X, train=False)[0][-1]

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return self._loss_and_output_grad(self._predict(X), y)[0]

    def _loss_loaded(self) -> float:
        return self._loss(self._X, self._y)

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        outputs, saved = self._forward(X, keeps=self._keeps(len(X)))
        loss, output_grad = self._loss_and_output_grad(outputs[-1], y)
        return loss, self._backward(saved, output_grad)

    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> np.ndarray:
        X, y = (self._X, self._y) if order is None else (self._X[order], self._y[order])  # batches: views
        losses = np.empty(len(bounds))
        for i, (start, stop) in enumerate(bounds):
            losses[i], grads = self._loss_and_grads(X[start:stop], y[start:stop])  # with the step's masks
            self._update(grads)
            self._mask_step += 1  # the next step's masks
        return losses

    # ---- replay hooks (compare.py explain) ----

    def _activations(self, X: np.ndarray) -> list[np.ndarray]:
        return self._forward(X, keeps=self._keeps(len(X)))[0]

    def _optimizer_state(self) -> dict[str, Any]:
        return self._optimizer.state

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        self._optimizer.steps_taken = state["step"]
        for kind, target in self._optimizer.state.items():
            for name, value in state[kind].items():
                target[name][...] = value

    # ---- the hand-derived pieces ----

    def _forward(self, X: np.ndarray, train: bool = True,
                 keeps: dict[int, np.ndarray] | None = None) -> tuple[list[np.ndarray], list[object]]:
        """Every layer's output, and what each layer's backward needs of its call (train: layers such as
        dropout and batch normalisation behave as in training, each dropout layer given its mask of `keeps`)."""
        outputs: list[np.ndarray] = []
        saved: list[object] = []
        masks = keeps or {}
        out = X
        for index, (layer, params, _) in enumerate(self._plan):
            given = {**params, "keep": masks[index]} if index in masks else params
            out, kept = layer.forward(given, out, train)
            outputs.append(out)
            saved.append(kept)
        return outputs, saved

    def _backward(self, saved: list[object], output_grad: np.ndarray) -> Params:
        grads: Params = {}
        g: np.ndarray | None = output_grad  # dL/d(output of the current layer)
        for index in reversed(range(len(self._plan))):
            layer, params, names = self._plan[index]
            assert g is not None
            g, found = layer.backward(params, saved[index], g, index > 0)  # the input needs no gradient
            for short, value in found.items():
                grads[names[short]] = value
        return grads

    def _loss_and_output_grad(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        if self.classifies and self.class_weights is not None:  # Σ w[yₙ]·lₙ / Σ w[yₙ], as torch's weight=
            weight = np.asarray(self.class_weights, dtype=output.dtype)[y[:, 0].astype(np.intp)]
            per_row, grad = _cross_entropy(output, y, each=True)
            return float(weight @ per_row / weight.sum()), grad * (weight * (len(y) / weight.sum()))[:, None]
        if self.classifies:
            return _cross_entropy(output, y, self.label_smoothing)
        diff = output - y
        n = diff.size  # the loss is a mean over every element of the batch
        if self.loss_name in ("mse", "half-mse"):
            flat = diff.ravel()
            scale = 1.0 if self.loss_name == "mse" else 0.5
            return scale * float(flat @ flat) / n, diff * (2.0 * scale / n)
        if self.loss_name == "bce-with-logits":  # the stable form: no exp of a positive number
            values = np.maximum(output, 0) - output * y + np.log1p(np.exp(-np.abs(output)))
            return float(np.mean(values)), (0.5 * (1 + np.tanh(0.5 * output)) - y) / n  # σ(ŷ) − y
        if self.loss_name == "l1":  # sign(0) = 0: no gradient where a prediction is exact, as torch's
            return float(np.mean(np.abs(diff))), np.sign(diff) / n
        delta = self.huber_delta
        quadratic = np.abs(diff) <= delta
        values = np.where(quadratic, 0.5 * diff * diff, delta * (np.abs(diff) - 0.5 * delta))
        return float(np.mean(values)), np.where(quadratic, diff, delta * np.sign(diff)) / n

    def _update(self, grads: Params) -> None:
        """One optimiser step from the loss's gradients (the canonical formulas, optimizers/numpy_optimizer.py)."""
        self._optimizer.step(grads)

    def _penalty(self) -> float:
        # NumpyOptimizer.step decays every parameter: g + wd·p
        return 0.5 * self.weight_decay * sum(float(np.vdot(param, param)) for param in self._params.values())
