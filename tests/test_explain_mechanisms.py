"""compare.py explain names the mechanism behind a difference whenever the numbers show one: each planted in
a deliberately broken backend of someone else's (a subclass of the numpy one, as a third-party backend is),
and each must be named, not the stage alone ("the optimiser's update rule")."""

from __future__ import annotations

import dataclasses
from unittest import mock

import numpy as np
import pytest

from backend_compare.backends import Backend
from backend_compare.backends.numpy_backend import NumpyBackend
from backend_compare.layers import BatchNorm, Conv2d, activation
from backend_compare.optimizers.training import ADAM_BETAS, ADAM_EPS
from tests.test_explain import explained


class DoubledGradients(NumpyBackend):
    """Every gradient twice what the loss gives (a seed gradient of 2)."""

    name = "doubled-gradients"

    def _backward(self, saved: list[object], output_grad: np.ndarray) -> dict[str, np.ndarray]:
        return super()._backward(saved, 2 * output_grad)


class SummedLoss(NumpyBackend):
    """The loss, and so its gradient, summed over the batch instead of averaged."""

    name = "summed-loss"

    def _loss_and_output_grad(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = super()._loss_and_output_grad(output, y)
        return len(output) * loss, len(output) * grad


class Scaled(NumpyBackend):
    """The loss and its gradient scaled by factors of their own (set per test)."""

    name = "scaled"
    on_loss, on_gradient = 2.0, 1.0

    def _loss_and_output_grad(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = super()._loss_and_output_grad(output, y)
        return self.on_loss * loss, self.on_gradient * grad


class ScaledTanh(NumpyBackend):
    """tanh's forward 1 % too large; the layers around it right."""

    name = "scaled-tanh"

    def _forward(self, X: np.ndarray, train: bool = True,
                 keeps: dict[int, np.ndarray] | None = None) -> tuple[list[np.ndarray], list[object]]:
        wrong = {"tanh": dataclasses.replace(activation.FUNCTIONS["tanh"], forward=lambda a: 1.01 * np.tanh(a))}
        with mock.patch.dict(activation.FUNCTIONS, wrong):
            return super()._forward(X, train, keeps)


class SkippedStep(NumpyBackend):
    """The optimiser step never taken: no parameter moves, no step counted."""

    name = "skipped-step"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        return None


class FrozenBias(NumpyBackend):
    """The biases left out of the optimiser."""

    name = "frozen-bias"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        biases = {name: param.copy() for name, param in self._params.items() if name.endswith(".bias")}
        super()._update(grads)
        for name, value in biases.items():
            self._params[name][...] = value


class NoDecay(NumpyBackend):
    """weight_decay accepted and ignored."""

    name = "no-decay"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        training = self._optimizer.training
        self._optimizer.training = dataclasses.replace(training, weight_decay=0.0)
        try:
            super()._update(grads)
        finally:
            self._optimizer.training = training


class DecoupledDecay(NumpyBackend):
    """Adam with decoupled weight decay (AdamW): −lr·λ·w on the weights, λ·w kept out of the moments."""

    name = "adamw"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        training, decay = self._optimizer.training, self.weight_decay
        self._optimizer.training = dataclasses.replace(training, weight_decay=0.0)
        before = {name: param.copy() for name, param in self._params.items()}
        try:
            super()._update(grads)
        finally:
            self._optimizer.training = training
        for name, param in self._params.items():
            param -= self.lr * decay * before[name]


class OwnEpsilon(NumpyBackend):
    """Adam with ε = 1e-6 where the others use 1e-8, added to √v̂ as they do."""

    name = "own-epsilon"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        with mock.patch("backend_compare.optimizers.training.ADAM_EPS", 1e-6):
            super()._update(grads)


def cause_of(planted: type[Backend], stage: str, task: str = "mlp", **options: object) -> str:
    finding = explained(planted, task=task, **options)
    assert (finding.agree, finding.step, finding.stage) == (False, 1, stage), finding
    return finding.cause


def test_a_constant_factor_on_every_gradient_is_named() -> None:
    assert cause_of(DoubledGradients, "gradient").startswith(
        "every gradient differs by a constant factor 2 while the loss agrees: the backward is scaled")


def test_a_loss_summed_instead_of_averaged_is_named_by_the_batch_size() -> None:
    assert cause_of(SummedLoss, "loss") == ("a constant factor 10 on the loss and every gradient (b = 10·a): a factor "
                                            "10, the batch size: b sums over the batch where a averages")


def test_a_factor_on_the_loss_is_named_only_where_the_gradients_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cause_of(Scaled, "loss") == ("the loss differs by a factor 2 while every gradient agrees: the loss is "
                                        "reported scaled, the one trained on is not")
    monkeypatch.setattr(Scaled, "on_gradient", 3.0)
    assert cause_of(Scaled, "loss") == ("the forward outputs agree, the loss on them and its gradients do not: the "
                                        "loss functions differ")


def test_a_single_layers_forward_is_named() -> None:
    assert cause_of(ScaledTanh, "forward") == ("only layer 1 (tanh) computes differently: its input (layer 0's "
                                               "output) agrees, its output does not, every output scaled by 1.01: "
                                               "that layer's forward is scaled")


def test_a_skipped_step_and_a_frozen_parameter_are_named() -> None:
    assert cause_of(SkippedStep, "update", task="linreg") == (
        "skipped-step makes no update while the gradients agree: the step is skipped (or taken with a learning rate "
        "of 0)")
    assert cause_of(SkippedStep, "update", optimizer="adam", lr=0.01).startswith(
        "skipped-step skips the step: no parameter moves and its optimiser state stays as it was")
    assert cause_of(FrozenBias, "update").startswith("frozen-bias leaves 0.bias, 2.bias unchanged while the "
                                                     "gradients agree: those parameters are not updated")


def test_weight_decay_ignored_or_decoupled_is_named() -> None:
    lr, decay = 0.03, 2**-4
    ignored = cause_of(NoDecay, "update", weight_decay=decay)
    assert ignored.startswith(f"gradients agree, the updates differ by a term proportional to the weights "
                              f"({lr * decay:.6g}·w), k = lr·λ: no-decay applies no weight decay")
    decoupled = cause_of(DecoupledDecay, "update", optimizer="adam", lr=0.01, weight_decay=decay)
    assert decoupled.endswith(f"numpy's first moment holds λ·w where adamw's does not: weight decay λ = {decay:g} "
                              "coupled by numpy (added to the gradient, L2) and decoupled by adamw (−lr·λ·w on the "
                              "weights, AdamW-style)")
    # Adam without decay: the update is not k·w (Adam normalises λ·w with the gradient), the first moment is
    ignored = cause_of(NoDecay, "update", optimizer="adam", lr=0.01, weight_decay=decay)
    assert ignored.endswith(f"numpy's first moment holds 0.1·λ·w more than no-decay's and no-decay's update takes no "
                            f"−lr·λ·w: weight decay λ = {decay:g} coupled by numpy (added to the gradient, L2) and "
                            "not applied by no-decay")


def test_adams_epsilon_of_another_size_is_read_back_from_the_updates() -> None:
    cause = cause_of(OwnEpsilon, "update", optimizer="adam", lr=0.01)
    assert cause.endswith(f"ε acts on √v̂ as {ADAM_EPS:.3g} in numpy and 1e-06 in own-epsilon: Adam's ε differs")


@pytest.mark.parametrize("beta", [0, 1])
def test_a_beta_held_in_float32_is_named(beta: int) -> None:
    """Found at step 2 (bias correction hides it in the first update), where the moment no longer differs by one
    factor: fitted against (moment before − g) or (v before − g²), it names the β."""
    held = tuple(float(np.float32(b)) if index == beta else b for index, b in enumerate(ADAM_BETAS))

    class HeldBeta(NumpyBackend):
        name = "held-beta"

        def _update(self, grads: dict[str, np.ndarray]) -> None:
            with mock.patch("backend_compare.optimizers.training.ADAM_BETAS", held):
                super()._update(grads)

    finding = explained(HeldBeta, task="mlp", optimizer="adam", lr=0.01)
    symbol = ("β₁", "β₂")[beta]
    assert finding.step == 2 and f"{symbol} = {ADAM_BETAS[beta]:g} is held in float32 by held-beta" in finding.cause


def test_adams_epsilon_is_not_read_back_through_a_step_count_of_zero() -> None:
    """A backend whose state counts no step (t = 0 on both sides): no bias correction to divide by, no crash."""
    from backend_compare.comparison.mechanisms import Step, _epsilon_placement

    same = (np.full(2, 0.1), np.full(2, 0.1))
    stages = {"update": {"w": (np.full(2, -0.01), np.full(2, -0.02))},
              "state": {"step": (np.array(0.0), np.array(0.0)), "m/w": same, "v/w": same}}
    step = Step("a", "b", stages, {"w": np.ones(2)}, {}, 10, {"optimizer": "adam", "lr": 0.01}, "float64", [])
    assert _epsilon_placement(step) == ""


class FailsInFloat64(NumpyBackend):
    """Gradients 2e-5 too large, below float32's tolerance at any one step; a float64 model of it that fails."""

    name = "fails-in-float64"

    def _backward(self, saved: list[object], output_grad: np.ndarray) -> dict[str, np.ndarray]:
        if self.dtype == "float64":
            raise RuntimeError("this backend's float64 step is broken")
        return super()._backward(saved, (1 + 2e-5) * output_grad)


def test_a_float64_replay_that_fails_is_said_not_raised() -> None:
    from backend_compare.comparison.explain import Explainer
    from backend_compare.tasks import get_task

    problem = get_task("linreg").make_problem(seed=0, epochs=20, batch_size=10)
    options = {"dtype": "float32", "lr": 0.03}
    backends = {"numpy": NumpyBackend(problem.spec, **options), "fails": FailsInFloat64(problem.spec, **options)}
    (finding,) = Explainer(problem, backends, options).run()
    assert finding.step is not None and finding.replayed is not None  # beyond tolerance from some step on
    assert finding.replayed.startswith("the step could not be replayed in float64 (RuntimeError: this backend's "
                                       "float64 step is broken)"), finding.replayed


class PaddedBefore(NumpyBackend):
    """A port whose convolutions split an odd padding the other way: the extra row and column before."""

    name = "padded-before"

    def _build(self) -> None:
        super()._build()

        def swapped(layer: Conv2d) -> Conv2d:
            class Before(Conv2d):
                def pads(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
                    return tuple((after, before) for before, after in super().pads(shape))

            return Before(**{field.name: getattr(layer, field.name) for field in dataclasses.fields(layer)})

        self._plan = [(swapped(layer) if isinstance(layer, Conv2d) else layer, params, names)
                      for layer, params, names in self._plan]


def test_a_padding_split_the_other_way_is_named_at_its_layer() -> None:
    from backend_compare.comparison.explain import Explainer
    from backend_compare.tasks import get_task

    problem = get_task("cnn").make_problem(seed=0, epochs=1, batch_size=16,
                                           layers="conv2d(4, 3, stride=2, padding=same), relu, flatten, linear(10)")
    options = {"dtype": "float64", "lr": 0.1, "loss": "cross-entropy"}
    backends = {"numpy": NumpyBackend(problem.spec, **options), "padded-before": PaddedBefore(problem.spec, **options)}
    (finding,) = Explainer(problem, backends, options).run()
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "forward")
    assert finding.cause == (
        "only layer 1 (conv2d(1, 4, 3, stride=2, padding=same)) computes differently: its input (the batch) "
        "agrees, its output does not: padded-before pads it [(1, 0), (1, 0)] (before, after per axis) where the "
        "canonical layer pads [(0, 1), (0, 1)]: the odd row and column of padding go before instead of after "
        "(TensorFlow, JAX and torch put them after)")


def _ported_batchnorm(**changes: object) -> type[NumpyBackend]:
    """A port of the numpy backend whose BatchNorm layers take `changes` (its momentum read the other way, its
    running variance the other kind)."""
    class Ported(NumpyBackend):
        name = "ported-batchnorm"

        def _build(self) -> None:
            super()._build()
            self._plan = [(dataclasses.replace(layer, **changes) if isinstance(layer, BatchNorm) else layer, params,
                           names) for layer, params, names in self._plan]

    return Ported


@pytest.mark.parametrize("changes,cause", [
    ({"momentum": 0.1}, "ported keeps 0.1 of the old value where numpy keeps 0.9, its momentum read the "
                        "other way (torch's momentum 0.1 is the new batch's share; Keras's, Flax's and Gluon's 0.9 "
                        "is the old value's)"),
    ({"unbiased_running_var": True}, "ported keeps the unbiased batch variance (× n/(n−1) = 1.00098) where "
                                     "numpy keeps the biased one"),  # n = 16 rows × 8×8 positions per channel
])
def test_a_running_statistic_kept_another_way_is_named(changes: dict[str, object], cause: str) -> None:
    from backend_compare.comparison.explain import Explainer
    from backend_compare.tasks import get_task

    problem = get_task("cnn").make_problem(seed=0, epochs=1, batch_size=16, layers=(
        "conv2d(2, 3, padding=same), batchnorm, relu, maxpool(2), flatten, linear(10)"))
    options = {"dtype": "float64", "lr": 0.1, "loss": "cross-entropy"}
    ported = _ported_batchnorm(**changes)
    backends = {"numpy": NumpyBackend(problem.spec, **options), "ported": ported(problem.spec, **options)}
    (finding,) = Explainer(problem, backends, options).run()
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "statistics"), finding
    assert finding.difference is not None and finding.difference.where.startswith("2.running_")
    assert finding.cause.startswith("the forward agrees, layer 2's running_") and cause in finding.cause, finding.cause
