"""Every optimiser, schedule and clip on every backend, each framework's own objects: a few steps of a linear model
against formulas written here (not the NumPy backend's), and float64 parity with the NumPy backend after 3 epochs
of an MLP. What a framework cannot follow is refused by name, and the differences it cannot remove are held to
their named allowances."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from backend_compare import Linear, mlp_spec
from backend_compare.backends import BACKENDS
from backend_compare.backends.numpy_backend import NumpyBackend
from backend_compare.backends.testing import allowed_tolerance, assert_close
from backend_compare.backends.tolerances import applicable
from backend_compare.optimizers import OPTIMIZERS, Training, make_clip, make_schedule, support
from tests.conftest import load_backend

RNG = np.random.default_rng(5)
X, Y = RNG.normal(size=(12, 3)), RNG.normal(size=(12, 2))
START = {"0.weight": RNG.normal(0.0, 0.5, size=(2, 3)), "0.bias": RNG.normal(0.0, 0.5, size=2)}
BATCHES = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 12), np.arange(2, 6)]
# Exact in 32 bits, so that MXNet's float32 hyper-parameters hold them exactly; adadelta: MXNet's only rate, 1
OPTIONS = {"lr": 2**-4, "weight_decay": 2**-6}
LR = {"adadelta": 1.0}


def gradients(params: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The mse's gradient of the linear model on `rows`, written out: 2·residual / (its size)."""
    residual = X[rows] @ params["0.weight"].T + params["0.bias"] - Y[rows]
    scale = 2.0 / residual.size
    return {"0.weight": scale * residual.T @ X[rows], "0.bias": scale * residual.sum(axis=0)}


def expected(optimizer: str, lr: float, momentum: float, decay: float, rates: list[float] | None = None,
             clip: tuple[str, float] | None = None, steps: list[np.ndarray] = BATCHES) -> dict[str, np.ndarray]:
    """The parameters after `steps`, each optimiser's update as its paper and torch.optim write it: written here
    apart from the suite's own NumpyOptimizer, each in its own loop."""
    params = {name: value.copy() for name, value in START.items()}
    memory: dict[str, dict[str, np.ndarray]] = {}
    for t, rows in enumerate(steps, start=1):
        rate = lr if rates is None else rates[t - 1]
        g = gradients(params, rows)
        if clip is not None:
            kind, limit = clip
            if kind == "value":
                g = {k: np.minimum(np.maximum(v, -limit), limit) for k, v in g.items()}
            elif kind == "norm":
                g = {k: v * min(1.0, limit / np.sqrt(np.sum(v * v))) for k, v in g.items()}
            else:
                total = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
                g = {k: v * min(1.0, limit / total) for k, v in g.items()}
        for name in params:
            p = params[name]
            grad = g[name] + (0.0 if optimizer == "adamw" else decay) * p
            state = memory.setdefault(name, {})
            if optimizer in ("adam", "adamw"):
                if optimizer == "adamw":
                    p = p - rate * decay * p
                state["m"] = 0.9 * state.get("m", 0.0) + 0.1 * grad
                state["v"] = 0.999 * state.get("v", 0.0) + 0.001 * grad**2
                step = rate * (state["m"] / (1 - 0.9**t)) / (np.sqrt(state["v"] / (1 - 0.999**t)) + 1e-8)
            elif optimizer == "rmsprop":
                state["v"] = 0.99 * state.get("v", 0.0) + 0.01 * grad**2
                step = rate * grad / (np.sqrt(state["v"]) + 1e-8)
            elif optimizer == "adagrad":
                state["sum"] = state.get("sum", 0.1) + grad**2
                step = rate * grad / np.sqrt(state["sum"])
            elif optimizer == "adadelta":
                state["v"] = 0.9 * state.get("v", 0.0) + 0.1 * grad**2
                delta = np.sqrt(state.get("u", 0.0) + 1e-6) / np.sqrt(state["v"] + 1e-6) * grad
                state["u"] = 0.9 * state.get("u", 0.0) + 0.1 * delta**2
                step = rate * delta
            elif momentum:
                state["b"] = momentum * state.get("b", 0.0) + grad
                step = rate * (grad + momentum * state["b"] if optimizer == "nesterov" else state["b"])
            else:
                step = rate * grad
            params[name] = p - step
    return params


def trained(name: str, dtype: str = "float64", steps: list[np.ndarray] = BATCHES, **options: object) -> dict:
    model = load_backend(name)([Linear(3, 2)], dtype=dtype, **options)
    model.set_params(START)
    model.load(X, Y)
    model.train_epoch(steps)
    return model.get_params()


def tolerance(name: str, optimizer: str, dtype: str = "float64") -> dict[str, float]:
    """The dtype's, widened only by the allowances that concern this backend and optimiser."""
    return allowed_tolerance(dtype, (name, "numpy"), applicable(dtype, (name, "numpy"), optimizer))


def refusal(name: str, training: Training, dtype: str = "float64") -> str | None:
    return support.refuses(load_backend(name).framework, training, dtype)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimiser_follows_the_formula_written_here(name: str, optimizer: str) -> None:
    lr = LR.get(optimizer, OPTIONS["lr"])
    momentum = 0.5 if optimizer in ("momentum", "nesterov") else None
    options = {**OPTIONS, "lr": lr, "optimizer": optimizer, "momentum": momentum}
    reason = refusal(name, Training(optimizer, lr, momentum or 0.0, OPTIONS["weight_decay"]))
    if reason is not None:  # MXNet has no AdamW: refused by name
        with pytest.raises(ValueError, match=re.escape(reason)):
            trained(name, **options)
        return
    found, want = trained(name, **options), expected(optimizer, lr, momentum or 0.0, OPTIONS["weight_decay"])
    for key in want:
        assert_close(found[key], want[key], dtype="float64", what=f"{name} {optimizer} {key}",
                     **tolerance(name, optimizer))


def mlp_run(name: str, optimizer: str, **options: object) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    spec = mlp_spec(3, (4,), 2, "tanh")
    X_mlp, y_mlp = rng.normal(size=(24, 3)), rng.normal(size=(24, 2))
    model = load_backend(name)(spec, dtype="float64", optimizer=optimizer, lr=LR.get(optimizer, 2**-4),
                               weight_decay=2**-6, **options)
    model.set_params({key: rng.normal(0.0, 0.5, size=value.shape) for key, value in model.get_params().items()})
    return model.fit(X_mlp, y_mlp, epochs=3, batch_size=8, seed=1).get_params()


@pytest.mark.parametrize("name", [name for name in BACKENDS if name != "numpy"])
@pytest.mark.parametrize("optimizer", [name for name in OPTIMIZERS if name != "adamw"])
def test_float64_parity_with_numpy_after_three_epochs(name: str, optimizer: str) -> None:
    ours, theirs = mlp_run("numpy", optimizer), mlp_run(name, optimizer)
    for key in ours:
        assert_close(theirs[key], ours[key], dtype="float64", what=f"{name} {optimizer} {key}",
                     **tolerance(name, optimizer))


@pytest.mark.parametrize("name", BACKENDS)
def test_adamw_decays_apart_from_the_gradient_after_three_epochs(name: str) -> None:
    if name == "mxnet":
        with pytest.raises(ValueError, match=re.escape("MXNet 1.9.1 has no AdamW optimiser")):
            mlp_run(name, "adamw")
        return
    ours, theirs, coupled = mlp_run("numpy", "adamw"), mlp_run(name, "adamw"), mlp_run("numpy", "adam")
    for key in ours:
        assert_close(theirs[key], ours[key], dtype="float64", what=f"{name} adamw {key}")
    assert max(float(np.max(np.abs(ours[key] - coupled[key]))) for key in ours) > 1e-4  # not Adam's L2 term


@pytest.mark.parametrize("name", ["tensorflow", "mxnet"])
def test_rmsprops_epsilon_in_the_root_needs_its_allowance(name: str) -> None:
    """Within the allowance (checked above), and beyond float64's tolerance without it: the finding is real."""
    ours, theirs = mlp_run("numpy", "rmsprop"), mlp_run(name, "rmsprop")
    worst = max(float(np.max(np.abs(theirs[key] - ours[key]) / (1e-12 + 1e-9 * np.abs(ours[key])))) for key in ours)
    assert worst > 10


# ---- schedules: the rate of each update, as written here ----

SCHEDULES = {
    "step:3:0.5": lambda t: 0.5 ** (t // 3),
    "exp:0.75": lambda t: 0.75**t,
    "cosine:steps=10:min=0.25": lambda t: 0.25 + 0.75 * (1 + math.cos(math.pi * t / 10)) / 2,
    "cosine:warmup=3:start=0.25:steps=10": lambda t: (0.25 + 0.75 * t / 3 if t < 3 else
                                                       (1 + math.cos(math.pi * (t - 3) / 7)) / 2),
    # torch's OneCycleLR: up from 1/25 to 1 by update 0.3·10 − 1 = 2, down to 1/(25·1e4) at update 9
    "onecycle:steps=10": lambda t: (1 / 25e4 + (1 - 1 / 25e4) * (1 + math.cos(math.pi * (t - 2) / 7)) / 2 if t > 2
                                    else 1 + (1 / 25 - 1) * (1 + math.cos(math.pi * t / 2)) / 2),
}
TEN = [BATCHES[t % 4] for t in range(10)]


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("text", SCHEDULES)
def test_each_schedule_sets_each_updates_rate(name: str, text: str) -> None:
    lr = OPTIONS["lr"]
    rates = [lr * SCHEDULES[text](t) for t in range(10)]
    assert rates == pytest.approx([lr * make_schedule(text).factor(t) for t in range(10)], rel=1e-12)
    training = Training("adam", lr, 0.0, 0.0, make_schedule(text))
    reason = refusal(name, training)
    if reason is not None:  # MXNet's and Keras's have no one-cycle
        assert text.startswith("onecycle") and name in ("mxnet", "tensorflow")
        with pytest.raises(ValueError, match=re.escape(reason)):
            trained(name, steps=TEN, optimizer="adam", lr=lr, schedule=text)
        return
    found = trained(name, steps=TEN, optimizer="adam", lr=lr, schedule=text)
    want = expected("adam", lr, 0.0, 0.0, rates=rates, steps=TEN)
    for key in want:
        assert_close(found[key], want[key], dtype="float64", what=f"{name} {text} {key}", **tolerance(name, "adam"))


@pytest.mark.parametrize("name", ["tensorflow", "mxnet"])
def test_a_schedule_with_momentum_is_refused_where_the_rate_sits_inside_the_buffer(name: str) -> None:
    with pytest.raises(ValueError, match=r"keep the rate inside their momentum|keeps the rate inside its momentum"):
        trained(name, steps=TEN, optimizer="momentum", lr=OPTIONS["lr"], schedule="exp:0.5")


def test_a_schedule_ends_with_its_steps() -> None:
    with pytest.raises(ValueError, match=r"ends after 10 updates; training would make update 11"):
        trained("numpy", steps=[*TEN, BATCHES[0]], optimizer="sgd", lr=0.1, schedule="cosine:steps=10")
    with pytest.raises(ValueError, match=r"schedule cosine needs the run's number of updates, steps=N"):
        NumpyBackend([Linear(3, 2)], schedule="cosine")


# ---- clipping ----

CLIPS = {"global-norm:0.25": ("global-norm", 0.25), "norm:0.2": ("norm", 0.2), "value:0.05": ("value", 0.05)}


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("text", CLIPS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_clip_limits_the_gradient_as_written_here(name: str, text: str, dtype: str) -> None:
    options = {"optimizer": "momentum", "momentum": 0.5, "clip": text, **OPTIONS}
    reason = refusal(name, Training("momentum", OPTIONS["lr"], 0.5, OPTIONS["weight_decay"], clip=make_clip(text)),
                     dtype)
    if reason is not None:  # gluon.utils.clip_global_norm fails on float64
        assert name == "mxnet" and dtype == "float64" and "norm" in text
        with pytest.raises(ValueError, match=re.escape(reason)):
            trained(name, dtype, **options)
        return
    unclipped = expected("momentum", OPTIONS["lr"], 0.5, OPTIONS["weight_decay"])
    want = expected("momentum", OPTIONS["lr"], 0.5, OPTIONS["weight_decay"], clip=CLIPS[text])
    assert max(float(np.max(np.abs(want[key] - unclipped[key]))) for key in want) > 1e-3  # the clip acts
    found = trained(name, dtype, **options)
    for key in want:
        assert_close(found[key], want[key], dtype=dtype, what=f"{name} {text} {key}",
                     **tolerance(name, "momentum", dtype))


@pytest.mark.parametrize("name", ["tensorflow"])  # MXNet's float32 ρ moves its square averages too: another stage
def test_explain_reads_where_rmsprops_epsilon_sits_from_the_updates(name: str) -> None:
    from backend_compare.comparison.explain import Explainer
    from backend_compare.tasks import get_task

    problem = get_task("mlp").make_problem(seed=0, epochs=1, batch_size=10)
    options = {"dtype": "float64", "lr": 2**-7, "optimizer": "rmsprop", "weight_decay": 0.0}
    backends = {other: load_backend(other)(problem.spec, **options) for other in ("numpy", name)}
    (finding,) = Explainer(problem, backends, options).run()
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "update")
    assert finding.cause.startswith("gradients and RMSprop's square averages agree; read back from the updates, ε is "
                                    f"added outside the root as 1e-08 in numpy (√v + ε, torch's) and inside it as "
                                    f"1e-16 in {name}")


def test_mxnets_adadelta_and_growing_schedules_are_refused() -> None:
    adadelta = Training("adadelta", 1.0, schedule=make_schedule("exp:0.9"))
    assert "AdaDelta has no learning rate" in (support.refuses("mxnet", adadelta, "float64") or "")
    growing = Training("sgd", 0.1, schedule=make_schedule("exp:1.1"))
    assert "FactorScheduler takes factors up to 1" in (support.refuses("mxnet", growing, "float64") or "")
    assert support.refuses("torch", growing, "float64") is None


@pytest.mark.parametrize("pct,steps", [(0.8, 40), (0.28, 25), (0.3, 10), (0.5, 8)])
def test_optax_one_cycle_peaks_where_torchs_does(pct: float, steps: int) -> None:
    """pct × steps whole, its float rounding aside (0.28 × 25 = 7.000000000000001): optax's piecewise cosine given
    torch's phase ends, every rate the canonical one."""
    load_backend("jax")
    from backend_compare.optimizers import jax_optimizer

    training = Training("sgd", 0.5, schedule=make_schedule(f"onecycle:pct={pct}:steps={steps}"))
    assert support.refuses("jax", training, "float64") is None
    rates = jax_optimizer.schedule(training)
    for t in range(steps):
        assert float(rates(t)) == pytest.approx(0.5 * training.schedule.factor(t), rel=1e-12, abs=1e-15), t
    halfway = Training("sgd", 0.5, schedule=make_schedule(f"onecycle:pct=0.5:steps={2 * steps + 1}"))
    assert "peaks at a whole update" in (support.refuses("jax", halfway, "float64") or "")


@pytest.mark.parametrize("options", [{"clip": "global-norm:0.1", "dtype": "float32"},
                                     {"clip": "norm:0.1", "dtype": "float32"},
                                     {"optimizer": "nesterov", "weight_decay": 2**-6, "dtype": "float64"},
                                     {"optimizer": "adagrad", "weight_decay": 2**-6, "dtype": "float64"}])
def test_mxnet_clips_and_decays_a_model_with_running_statistics(options: dict) -> None:
    """BatchNorm's running statistics are Trainer parameters without gradients: neither clipped nor decayed."""
    spec = mlp_spec(3, (4,), 2, "tanh", batchnorm="biased")
    rng = np.random.default_rng(3)
    X_bn, y_bn = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
    trained_with = {"optimizer": "momentum", "lr": 2**-4, **options}
    ours, theirs = (load_backend(name)(spec, **trained_with) for name in ("numpy", "mxnet"))
    theirs.set_params(ours.get_params())
    for model in (ours, theirs):
        model.fit(X_bn, y_bn, epochs=2, batch_size=8, seed=0)
    for key, value in ours.get_params().items():
        assert_close(theirs.get_params()[key], value, dtype=str(options["dtype"]), what=f"mxnet {options} {key}",
                     **tolerance("mxnet", str(trained_with["optimizer"]), str(options["dtype"])))
