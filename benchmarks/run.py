"""Benchmarks: the suite's training step against a plain hand-written loop in the same framework.

    python benchmarks/run.py            # every size and target; writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # the smallest size only; prints, writes nothing

Everything is measured in one process, suite and plain loop interleaved repeat by repeat, on the
same data and the same batches, so the ratios hold even on a busy machine. Peak memory and the
wall time of compare.py are measured in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend_compare.backends import BACKENDS, Backend, Linear, get_backend, make_spec, mlp_spec, param_shapes  # noqa: E402
from backend_compare.comparison.report import machine, versions  # noqa: E402

LR = 1e-3  # small enough that no size diverges
MIN_STEPS = 50  # optimiser steps per timing at the least ...
MIN_ROWS = 200_000  # ... or this many rows processed, whichever comes first
TARGETS = {"torch": 1.10, "mxnet": 1.10, "numpy": 1.30, "jax": 1.10, "tensorflow": 1.10}


# ---- plain loops: what a practitioner writes by hand; prepare outside the timing, run inside ----
# Each takes `compiled`: the same loop with the framework's compiler (or its eager default) on.

def plain_numpy(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                batches: list[np.ndarray], compiled: bool = False) -> Callable[[], None]:
    p = {name: value.copy() for name, value in params.items()}

    def linear() -> None:
        W, b = p["0.weight"], p["0.bias"]
        for idx in batches:
            xb, yb = X[idx], y[idx]
            err = xb @ W.T + b - yb
            float(np.mean(err * err))  # the loss a training loop reports
            g = err * (2.0 / err.size)
            W -= LR * (g.T @ xb)
            b -= LR * g.sum(axis=0)

    def mlp() -> None:
        W1, b1, W2, b2 = p["0.weight"], p["0.bias"], p["2.weight"], p["2.bias"]
        for idx in batches:
            xb, yb = X[idx], y[idx]
            h = np.tanh(xb @ W1.T + b1)
            err = h @ W2.T + b2 - yb
            float(np.mean(err * err))
            g = err * (2.0 / err.size)
            gh = (g @ W2) * (1.0 - h * h)
            W2 -= LR * (g.T @ h)
            b2 -= LR * g.sum(axis=0)
            W1 -= LR * (gh.T @ xb)
            b1 -= LR * gh.sum(axis=0)

    return linear if len(spec) == 1 else mlp


def plain_torch(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                batches: list[np.ndarray], compiled: bool = False) -> Callable[[], None]:
    import torch
    from torch import nn

    layers = [nn.Linear(layer.in_features, layer.out_features) if isinstance(layer, Linear) else nn.Tanh()
              for layer in spec]
    model = nn.Sequential(*layers)
    model.load_state_dict({name: torch.from_numpy(value.astype(np.float32)) for name, value in params.items()})
    optimizer, mse = torch.optim.SGD(model.parameters(), lr=LR), nn.MSELoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def model_loss(xb: Any, yb: Any) -> Any:
        return mse(model(xb), yb)

    forward = torch.compile(model_loss) if compiled else model_loss

    def run() -> None:
        for batch in batches:
            idx = torch.from_numpy(batch)
            optimizer.zero_grad()
            loss = forward(Xt[idx], yt[idx])
            loss.backward()
            optimizer.step()

    return run


def _gluon_net(spec: Any, params: dict[str, np.ndarray], hybridize: bool) -> Any:
    get_backend("mxnet")  # its numpy.bool shim must run before MXNet is imported
    from mxnet import gluon, nd

    net = gluon.nn.HybridSequential() if hybridize else gluon.nn.Sequential()
    for layer in spec:
        net.add(gluon.nn.Dense(layer.out_features, in_units=layer.in_features) if isinstance(layer, Linear)
                else gluon.nn.Activation("tanh"))
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True)
    for name, value in params.items():
        index, kind = name.split(".")
        getattr(net[int(index)], kind).set_data(nd.array(value, dtype="float32"))
    return net


def plain_mxnet(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                batches: list[np.ndarray], compiled: bool = True) -> Callable[[], None]:
    net = _gluon_net(spec, params, hybridize=compiled)
    from mxnet import autograd, gluon, nd

    loss_fn = gluon.loss.L2Loss(weight=2.0)
    loss_fn.hybridize(compiled, static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR}, kvstore=None)
    Xn, yn = nd.array(X), nd.array(y)

    def run() -> None:
        for batch in batches:  # as d2l's data_iter: indices to an NDArray per batch
            idx = nd.array(batch, dtype="int64")
            xb, yb = nd.take(Xn, idx), nd.take(yn, idx)
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(len(idx))
        nd.waitall()  # MXNet is asynchronous: the work is done only when the engine is idle

    return run


def reference_mxnet(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                    batch_size: int) -> tuple[Callable[[], None], int]:
    """The Gluon reference of d2l §3.3 as written: DataLoader over ArrayDataset, Sequential, L2Loss."""
    net = _gluon_net(spec, params, hybridize=False)
    from mxnet import autograd, gluon, nd

    loss_fn = gluon.loss.L2Loss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    loader = gluon.data.DataLoader(gluon.data.ArrayDataset(nd.array(X), nd.array(y)), batch_size, shuffle=True)

    def run() -> None:
        for xb, yb in loader:
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(batch_size)
        nd.waitall()

    return run, len(loader)


def plain_jax(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
              batches: list[np.ndarray], compiled: bool = True) -> Callable[[], None]:
    """What the JAX docs teach: parameters as a pytree, a jitted step of jax.grad and optax."""
    get_backend("jax")  # the backend's x64 setting, as the suite runs it
    import jax
    import jax.numpy as jnp
    import optax

    weights = {name: jnp.asarray(value, dtype=jnp.float32) for name, value in params.items()}
    linears = [index for index, layer in enumerate(spec) if isinstance(layer, Linear)]

    def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
        out = xb
        for position, index in enumerate(linears):
            out = out @ p[f"{index}.weight"].T + p[f"{index}.bias"]
            out = jnp.tanh(out) if position < len(linears) - 1 else out
        return jnp.mean((out - yb) ** 2)

    tx = optax.sgd(LR)
    state = {"params": weights, "opt": tx.init(weights)}

    def step(p: Any, opt: Any, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(p, updates), opt, loss

    jitted = jax.jit(step)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def run() -> None:
        p, opt = state["params"], state["opt"]
        with contextlib.nullcontext() if compiled else jax.disable_jit():
            for batch in batches:
                idx = jnp.asarray(batch)
                p, opt, loss = jitted(p, opt, Xj[idx], yj[idx])
        jax.block_until_ready(loss)
        state["params"], state["opt"] = p, opt

    return run


def plain_tensorflow(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                     batches: list[np.ndarray], compiled: bool = True) -> Callable[[], None]:
    """The Keras guide's custom training loop: GradientTape, apply_gradients, the step under tf.function."""
    get_backend("tensorflow")  # selects Keras's TensorFlow backend, as the suite runs it
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((spec[0].in_features,)),
                              *(keras.layers.Dense(layer.out_features) if isinstance(layer, Linear)
                                else keras.layers.Activation("tanh") for layer in spec)])
    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(params[f"{index}.weight"].T.astype(np.float32))
            layer.bias.assign(params[f"{index}.bias"].astype(np.float32))
    optimizer, mse = keras.optimizers.SGD(LR), keras.losses.MeanSquaredError()

    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = mse(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    run_step = tf.function(step) if compiled else step
    Xt, yt = tf.constant(X), tf.constant(y)

    def run() -> None:
        for batch in batches:
            idx = tf.constant(batch)
            loss = run_step(tf.gather(Xt, idx), tf.gather(yt, idx))
        float(loss)

    return run


PLAIN = {"numpy": plain_numpy, "torch": plain_torch, "mxnet": plain_mxnet, "jax": plain_jax,
         "tensorflow": plain_tensorflow}


# ---- measuring ----

def suite_loop(name: str, spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
               batches: list[np.ndarray], mode: str = "usual") -> Callable[[], None]:
    model: Backend = get_backend(name)(spec, dtype="float32", lr=LR, mode=mode)
    model.set_params(params)
    model.load(X, y)

    def run() -> None:
        model.train_epoch(batches)

    return run


def epochs_of(run: Callable[[], None], epochs: int) -> Callable[[], None]:
    def repeated() -> None:
        for _ in range(epochs):
            run()

    return repeated


def interleaved(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each run, repeats interleaved (a, b, a, b, ...) after one warm-up of each."""
    for run in runs.values():
        run()
    seconds: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[key].append(time.perf_counter() - start)
    return seconds


def problem(model: str, n: int, features: int, seed: int = 0) -> tuple[Any, dict[str, np.ndarray], np.ndarray,
                                                                      np.ndarray]:
    rng = np.random.default_rng(seed)
    spec = make_spec([Linear(features, 1)]) if model == "linreg" else mlp_spec(1, (13,), 1, "tanh")
    X = rng.standard_normal((n, spec[0].in_features), dtype=np.float32)
    y = (X.sum(axis=1, keepdims=True) if model == "linreg" else np.sin(X)).astype(np.float32)
    params = {k: rng.uniform(-0.1, 0.1, size=s) for k, s in param_shapes(spec).items()}
    return spec, params, X, y


def batches_for(n: int, batch: int | None, rng: np.random.Generator, max_rows: int) -> list[np.ndarray]:
    """Shuffled batches over at most max_rows rows' worth of steps (a full batch is one step, in order)."""
    if batch is None:
        return [np.arange(n)]
    order = rng.permutation(n)[: max(batch, min(n, max_rows))]
    return [order[i : i + batch] for i in range(0, len(order), batch)]


def step_table(sizes: list[int], features_list: list[int], batch_list: list[int | None], repeats: int,
               names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for model in ("linreg", "mlp"):
        for n in sizes:
            for features in features_list if model == "linreg" else [1]:
                spec, params, X, y = problem(model, n, features)
                for batch in batch_list:
                    if batch is not None and batch > n:
                        continue
                    rng = np.random.default_rng(1)
                    batches = batches_for(n, batch, rng, max_rows=2000 if batch == 10 else 50 * (batch or n))
                    # Short epochs repeat, so a timing spans MIN_STEPS steps, unless MIN_ROWS rows come first.
                    rows_per_epoch = sum(len(b) for b in batches)
                    epochs = max(1, min(-(-MIN_STEPS // len(batches)), -(-MIN_ROWS // rows_per_epoch)))
                    for name in names:
                        runs = {"suite": epochs_of(suite_loop(name, spec, params, X, y, batches), epochs),
                                "plain": epochs_of(PLAIN[name](spec, params, X, y, batches), epochs)}
                        seconds = interleaved(runs, repeats)
                        per_step = {k: 1e6 * np.array(v) / (len(batches) * epochs) for k, v in seconds.items()}
                        ratios = np.array(seconds["suite"]) / np.array(seconds["plain"])
                        rows.append({"model": model, "backend": name, "n": n, "features": features,
                                     "batch": batch or "full", "steps": len(batches) * epochs,
                                     "suite_us": float(np.median(per_step["suite"])),
                                     "plain_us": float(np.median(per_step["plain"])),
                                     "ratio": float(np.median(ratios)),
                                     "ratio_spread": f"{ratios.min():.2f}–{ratios.max():.2f}",
                                     "target": TARGETS[name]})
                        print(f"  {model} {name} n={n} f={features} batch={batch or 'full'}: "
                              f"ratio {rows[-1]['ratio']:.2f}", file=sys.stderr)
    return rows


MODE_CASES = {"linreg n=1000, batch 10": ("linreg", 1000, 2, 10), "mlp n=10000, batch 100": ("mlp", 10_000, 1, 100)}
MODES = ("eager", "compiled")


def mode_rows(repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """Per case, backend and mode: the suite's steady step against the plain loop run the same way."""
    rows = []
    for case, (model, n, features, batch) in MODE_CASES.items():
        spec, params, X, y = problem(model, n, features)
        batches = batches_for(n, batch, np.random.default_rng(1), max_rows=n)
        for name in names:
            for mode in MODES:
                runs = {"suite": suite_loop(name, spec, params, X, y, batches, mode),
                        "plain": PLAIN[name](spec, params, X, y, batches, compiled=mode == "compiled")}
                seconds = interleaved(runs, repeats)
                ratios = np.array(seconds["suite"]) / np.array(seconds["plain"])
                rows.append({"case": case, "backend": name, "mode": mode,
                             "suite_us": 1e6 * float(np.median(seconds["suite"])) / len(batches),
                             "plain_us": 1e6 * float(np.median(seconds["plain"])) / len(batches),
                             "ratio": float(np.median(ratios)),
                             "ratio_spread": f"{ratios.min():.2f}–{ratios.max():.2f}",
                             "target": TARGETS[name]})
                print(f"  {case} {name} {mode}: ratio {rows[-1]['ratio']:.2f}", file=sys.stderr)
    return rows


def compile_rows(repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """What compare.py reports, each in a fresh process: the first step at each batch size (tracing and
    compiling) against the steady step, per backend and mode (medians of `repeats` runs)."""
    rows = []
    for task in ("linreg", "mlp"):
        for name in names:
            for mode in MODES:
                found: dict[str, list[float]] = {"compile_seconds": [], "us_per_step": []}
                for _ in range(repeats):
                    out = subprocess.run([sys.executable, "compare.py", "--task", task, "--backends", name, "--mode",
                                          mode, "--executor", "inline", "--quiet", "--format", "json"], cwd=ROOT,
                                         capture_output=True, text=True, check=True).stdout
                    row = json.loads(out)["summary"][0]
                    for key in found:
                        found[key].append(row[key])
                compile_ms = 1e3 * float(np.median(found["compile_seconds"]))
                step_us = float(np.median(found["us_per_step"]))
                rows.append({"task": task, "backend": name, "mode": mode, "compile_ms": compile_ms,
                             "steady_us_per_step": step_us, "compile_in_steps": 1e3 * compile_ms / step_us})
                print(f"  {task} {name} {mode}: compile {compile_ms:.1f} ms, step {step_us:.1f} µs", file=sys.stderr)
    return rows


def mxnet_reference_row(repeats: int) -> dict[str, Any]:
    spec, params, X, y = problem("linreg", 1000, 2)
    rng = np.random.default_rng(1)
    batches = batches_for(1000, 10, rng, max_rows=1000)
    reference, steps = reference_mxnet(spec, params, X, y, 10)
    seconds = interleaved({"suite": suite_loop("mxnet", spec, params, X, y, batches), "reference": reference},
                          repeats)
    suite_us = 1e6 * float(np.median(seconds["suite"])) / len(batches)
    reference_us = 1e6 * float(np.median(seconds["reference"])) / steps
    return {"suite_us": suite_us, "reference_us": reference_us, "speedup": reference_us / suite_us}


def bare_matmul_rows(n: int, features: int, repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """A full-batch linreg step against the two matrix products it needs: X·wᵀ and gᵀ·X."""
    spec, params, X, y = problem("linreg", n, features)
    g = np.ones((n, 1), dtype=np.float32)
    W = params["0.weight"].astype(np.float32)
    bare: dict[str, Callable[[], None]] = {}
    if "numpy" in names:
        def numpy_products() -> None:
            X @ W.T, g.T @ X

        bare["numpy"] = numpy_products
    if "torch" in names:
        import torch

        Xt, Wt, gt = torch.from_numpy(X), torch.from_numpy(W), torch.from_numpy(g)

        def torch_products() -> None:
            Xt @ Wt.T, gt.T @ Xt

        bare["torch"] = torch_products
    if "mxnet" in names:
        get_backend("mxnet")
        from mxnet import nd

        Xn, Wn, gn = nd.array(X), nd.array(W), nd.array(g)

        def mxnet_products() -> None:
            nd.dot(Xn, Wn, transpose_b=True), nd.dot(gn, Xn, transpose_a=True)
            nd.waitall()

        bare["mxnet"] = mxnet_products
    if "jax" in names:
        get_backend("jax")
        import jax
        import jax.numpy as jnp

        Xj, Wj, gj = jnp.asarray(X), jnp.asarray(W), jnp.asarray(g)

        def jax_products() -> None:
            jax.block_until_ready((Xj @ Wj.T, gj.T @ Xj))  # JAX dispatches asynchronously

        bare["jax"] = jax_products
    if "tensorflow" in names:
        get_backend("tensorflow")
        import tensorflow as tf

        Xf, Wf, gf = tf.constant(X), tf.constant(W), tf.constant(g)

        def tensorflow_products() -> None:
            tf.matmul(Xf, Wf, transpose_b=True).numpy(), tf.matmul(gf, Xf, transpose_a=True).numpy()

        bare["tensorflow"] = tensorflow_products
    rows = []
    for name in names:
        seconds = interleaved({"suite": suite_loop(name, spec, params, X, y, [np.arange(n)]), "bare": bare[name]},
                              repeats)
        ratio = np.array(seconds["suite"]) / np.array(seconds["bare"])
        rows.append({"backend": name, "suite_ms": 1e3 * float(np.median(seconds["suite"])),
                     "bare_ms": 1e3 * float(np.median(seconds["bare"])), "ratio": float(np.median(ratio))})
    return rows


def scaling_rows(sizes: list[int], features: int, batch: int, repeats: int, names: list[str]) -> list[dict[str, Any]]:
    """Seconds per epoch at each n (batches of `batch`, shuffled), for the suite and the plain loop, and
    the fitted exponent k of time ~ n^k."""
    rows = []
    for name in names:
        epoch_seconds: dict[str, list[float]] = {"suite": [], "plain": []}
        for n in sizes:
            spec, params, X, y = problem("linreg", n, features)
            order = np.random.default_rng(1).permutation(n)
            batches = [order[i : i + batch] for i in range(0, n, batch)]
            runs = {"suite": suite_loop(name, spec, params, X, y, batches),
                    "plain": PLAIN[name](spec, params, X, y, batches)}
            for key, seconds in interleaved(runs, repeats).items():
                epoch_seconds[key].append(float(np.median(seconds)))
        for key, seconds in epoch_seconds.items():
            exponent = float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])
            rows.append({"backend": name, "loop": key,
                         **{f"n={n:.0e}": s for n, s in zip(sizes, seconds, strict=True)}, "exponent": exponent})
    return rows


MEMORY_PROBE = """
import json, sys
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark that fork and exec carried over
def high_water_mb():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024
sys.path.insert(0, {root!r})
import numpy as np
from backend_compare.backends import get_backend
from backend_compare.comparison.run import train
from backend_compare.tasks import get_task
name = {name!r}
get_backend(name)(get_task("linreg").make_problem(epochs=1, n_samples=100, true_w=[0.0]).spec)  # import + build
baseline = high_water_mb()
problem = get_task("linreg").make_problem(seed=0, true_w=np.linspace(-1, 1, {features}), n_samples={n_samples},
                                          batch_size=None, epochs=2, dtype="float32")
result = train(get_backend(name)(problem.spec, dtype="float32", lr=0.01), problem)
peak = high_water_mb()
print(json.dumps({{"baseline_mb": baseline, "peak_mb": peak, "status": result.status}}))
"""


def memory_rows(n_train: int, features: int, names: list[str]) -> list[dict[str, Any]]:
    dataset_mb = n_train * (features + 1) * 4 / 2**20  # float32 X and y of the training split
    rows = []
    for name in names:
        code = MEMORY_PROBE.format(root=str(ROOT), name=name, features=features, n_samples=int(n_train / 0.8))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        measured = json.loads(out.strip().splitlines()[-1])
        growth = measured["peak_mb"] - measured["baseline_mb"]
        rows.append({"backend": name, "baseline_mb": measured["baseline_mb"], "peak_mb": measured["peak_mb"],
                     "growth_mb": growth, "dataset_mb": dataset_mb, "growth_over_dataset": growth / dataset_mb})
    return rows


MEMORY_CASES = {  # name -> compare.py arguments; each is measured with numpy, torch and mxnet in turn
    "linreg 1e5 rows, full batch, 2000 epochs": ["--n-samples", "125000", "--batch-size", "100000",
                                                 "--epochs", "2000"],
    "linreg 1e6 rows, batches of 1000, --out": ["--n-samples", "1000000", "--batch-size", "1000", "--epochs", "1",
                                                "--out", "{tmp}/run"],
    "mlp 1e5 rows, hidden 64, huber, adam": ["--task", "mlp", "--n-samples", "100000", "--hidden", "64", "--lr",
                                             "0.01", "--batch-size", "1000", "--epochs", "1", "--loss", "huber",
                                             "--optimizer", "adam"],
}
TINY = ["--n-samples", "1000", "--epochs", "1"]  # the same command at a negligible size: its fixed cost


def memory_probe(args: list[str]) -> dict[str, Any]:
    """One run of compare.py in a fresh process: measured peak growth and the suite's estimate (MB)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        argv = [arg.format(tmp=tmp) for arg in args]
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory_probe.py"), *argv],
                             capture_output=True, text=True, check=True).stdout
    measured: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return measured


def memory_estimate_rows(names: list[str]) -> list[dict[str, Any]]:
    """Per case and backend: the growth of peak memory over the warm import baseline, the same command's
    growth at 1000 rows (its fixed cost), the data, and the estimate made before the run."""
    rows = []
    for case, args in MEMORY_CASES.items():
        n_samples = int(args[args.index("--n-samples") + 1])
        features = 2 if "mlp" not in case else 1
        data_mb = n_samples * (features + 1) * 4 / 2**20  # float32 X and y
        for name in names:
            run = memory_probe(["--backends", name, *args])
            tiny = memory_probe(["--backends", name, *args[: args.index("--n-samples")], *TINY])
            rows.append({"case": case, "backend": name, "data_mb": data_mb, "growth_mb": run["growth_mb"],
                         "fixed_mb": tiny["growth_mb"], "over_fixed_per_data": (run["growth_mb"] - tiny["growth_mb"])
                         / data_mb, "estimate_mb": run["estimate_mb"],
                         "estimate_over_growth": run["estimate_mb"] / run["growth_mb"],
                         "imports_mb": run["imports_mb"], "import_estimate_mb": run["import_estimate_mb"]})
    return rows


def worker_rows(repeats: int, names: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Wall time of `--seeds 6` with workers against inline, alternated run by run; µs per step inside a
    worker against inline (from the same runs); and how long a worker takes to start and load."""
    from backend_compare.comparison.executors import Worker

    runs = []
    for task in ("linreg", "mlp"):
        # "alone": one job at a time, so a worker's steps are timed without another worker on the cores
        settings = {"process": ["--executor", "process"], "alone": ["--executor", "process", "--jobs", "1"],
                    "inline": ["--executor", "inline"]}
        walls: dict[str, list[float]] = {key: [] for key in settings}
        steps: dict[str, dict[str, list[float]]] = {key: {} for key in settings}
        for _ in range(repeats):
            for key, extra in settings.items():
                began = time.perf_counter()
                out = subprocess.run([sys.executable, "compare.py", "--task", task, "--seeds", "6", "--quiet",
                                      "--backends", ",".join(names), *extra, "--format", "json"],
                                     cwd=ROOT, capture_output=True, text=True, check=True).stdout
                walls[key].append(time.perf_counter() - began)
                for row in json.loads(out)["summary"]:
                    steps[key].setdefault(row["backend"], []).append(row["us_per_step"])
        runs.append({"task": f"{task} --seeds 6", "inline_s": float(np.median(walls["inline"])),
                     "workers_s": float(np.median(walls["process"])),
                     "ratio": float(np.median(walls["process"]) / np.median(walls["inline"])),
                     **{f"{name}_step_ratio": float(np.median(steps["alone"][name]) / np.median(steps["inline"][name]))
                        for name in names}})
    starts = []
    for name in names:
        seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            worker = Worker(name, sys.executable)
            worker.start()
            seconds.append(time.perf_counter() - began)
            worker.close()
        starts.append({"backend": name, "start_and_load_s": float(np.median(seconds))})
    return runs, starts


def compare_wall_seconds(repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "compare.py", "--task", "linreg"], cwd=ROOT, capture_output=True, check=True)
        seconds.append(time.perf_counter() - start)
    return seconds


# ---- report ----

def markdown(rows: list[dict[str, Any]], formats: dict[str, str] | None = None) -> str:
    import pandas as pd

    table = pd.DataFrame(rows)
    for column, fmt in (formats or {}).items():
        if column in table:
            table[column] = [fmt.format(v) for v in table[column]]
    return table.to_markdown(index=False, floatfmt=".3g")


def explain_misses(where: str, misses: list[str], why: str) -> str:
    """A paragraph under the targets: which ones missed, and why (nothing when none did)."""
    return f"\n\nWhere {where}: {'; '.join(misses)}. {why}" if misses else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smallest size only; nothing written")
    parser.add_argument("--memory", action="store_true", help="the memory estimate against measured peaks only")
    parser.add_argument("--workers", action="store_true", help="workers against inline, and workers' start-up only")
    parser.add_argument("--modes", action="store_true", help="eager and compiled modes, and compile costs only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args(argv)
    names = args.backends.split(",")
    started = time.perf_counter()

    if args.workers:
        runs, starts = worker_rows(args.repeats, names)
        print(markdown(runs) + "\n\n" + markdown(starts))
        return 0
    if args.memory:
        print(markdown(memory_estimate_rows(names)))
        return 0
    if args.modes:
        print(markdown(mode_rows(args.repeats, names), {"suite_us": "{:.1f}", "plain_us": "{:.1f}", "ratio": "{:.2f}"})
              + "\n\n" + markdown(compile_rows(3, names), {"compile_ms": "{:.1f}", "steady_us_per_step": "{:.1f}",
                                                             "compile_in_steps": "{:.0f}"}))
        return 0
    if args.quick:
        rows = step_table([1000], [2], [10], repeats=max(1, min(args.repeats, 3)), names=names)
        print(markdown(rows, {"suite_us": "{:.1f}", "plain_us": "{:.1f}", "ratio": "{:.2f}"}))
        return 0

    sections = [f"# Benchmarks\n\n{datetime.date.today().isoformat()} · {machine()} · "
                + " · ".join(f"{k} {v}" for k, v in versions().items()) + f" · {platform.processor() or ''}\n"]
    rows = step_table([1000, 10_000, 100_000, 1_000_000], [2, 100], [10, 1000, None], args.repeats, names)
    sections.append("## Suite step against a plain hand-written loop (float32, SGD, µs per step, medians of "
                    f"{args.repeats} interleaved repeats)\n\n"
                    + markdown(rows, {"suite_us": "{:.1f}", "plain_us": "{:.1f}", "ratio": "{:.2f}"}))
    reference = mxnet_reference_row(args.repeats) if "mxnet" in names else None
    bare = bare_matmul_rows(1_000_000, 100, args.repeats, names)
    scaling = scaling_rows([10_000, 100_000, 1_000_000], 100, 1000, args.repeats, names)
    memory = memory_rows(1_000_000, 100, names)
    estimates = memory_estimate_rows(names)
    worker_runs, worker_starts = worker_rows(3, names)
    modes, compiles = mode_rows(args.repeats, names), compile_rows(3, names)
    wall = compare_wall_seconds(3)

    worst = {name: max(r["ratio"] for r in rows if r["backend"] == name) for name in names}
    targets = [(f"{name} suite ≤ {TARGETS[name]:.2f}× its plain loop, at every size", f"worst {worst[name]:.2f}×",
                worst[name] <= TARGETS[name]) for name in names]
    if reference:
        targets.append(("mxnet suite ≥ 2× faster per step than the Gluon DataLoader reference loop",
                        f"{reference['speedup']:.2f}× ({reference['suite_us']:.0f} vs {reference['reference_us']:.0f}"
                        " µs)", reference["speedup"] >= 2))
    targets += [(f"{r['backend']} full-batch step at 1e6×100 ≤ 2× its two bare matrix products",
                 f"{r['ratio']:.2f}× ({r['suite_ms']:.1f} vs {r['bare_ms']:.1f} ms)", r["ratio"] <= 2) for r in bare]
    plain_k = {r["backend"]: r["exponent"] for r in scaling if r["loop"] == "plain"}
    targets += [(f"{r['backend']} time per epoch ∝ n^k, k in [0.9, 1.1] (1e4 → 1e6, batches of 1000)",
                 f"k = {r['exponent']:.2f} (plain loop: k = {plain_k[r['backend']]:.2f})",
                 0.9 <= r["exponent"] <= 1.1) for r in scaling if r["loop"] == "suite"]
    targets += [(f"{r['backend']} peak memory of a 1e6×100 float32 run ≤ import baseline + 3× data",
                 f"+{r['growth_mb']:.0f} MB = {r['growth_over_dataset']:.2f}× the {r['dataset_mb']:.0f} MB of data",
                 r["growth_over_dataset"] <= 3) for r in memory]
    targets += [(f"{r['backend']} {r['case']}: estimate ≥ measured growth", f"{r['estimate_mb']:.0f} MB against "
                 f"{r['growth_mb']:.0f} MB ({r['estimate_over_growth']:.2f}×)",
                 r["estimate_mb"] >= r["growth_mb"]) for r in estimates]
    targets += [(f"{r['backend']} {r['case']}: growth beyond the 1000-row run ≤ 3× data",
                 f"{r['growth_mb'] - r['fixed_mb']:.1f} MB = {r['over_fixed_per_data']:.2f}× {r['data_mb']:.1f} MB",
                 r["over_fixed_per_data"] <= 3) for r in estimates if "2000 epochs" in r["case"]]
    targets += [(f"{r['task']} over {', '.join(names)}: workers ≤ 0.65× the inline wall time",
                 f"{r['ratio']:.2f}× ({r['workers_s']:.1f} vs {r['inline_s']:.1f} s)", r["ratio"] <= 0.65)
                for r in worker_runs]
    targets += [(f"{r['task']}: {name} µs per step in a worker (--jobs 1) ≤ 1.05× inline",
                 f"{r[f'{name}_step_ratio']:.2f}×",
                 r[f"{name}_step_ratio"] <= 1.05) for r in worker_runs for name in names]
    targets += [(f"{r['backend']} {r['mode']} suite ≤ {r['target']:.2f}× its plain {r['mode']} loop, {r['case']}",
                 f"{r['ratio']:.2f}× ({r['suite_us']:.0f} vs {r['plain_us']:.0f} µs)", r["ratio"] <= r["target"])
                for r in modes]
    targets.append(("python compare.py --task linreg < 8 s wall, imports included",
                    f"median {np.median(wall):.2f} s (of {', '.join(f'{s:.2f}' for s in wall)})",
                    float(np.median(wall)) < 8))
    target_table = markdown([{"target": t, "measured": m, "met": "yes" if ok else "NO"} for t, m, ok in targets])
    target_table += explain_misses(
        "a step ratio is missed", [f"{row['model']} {row['backend']} n={row['n']} batch={row['batch']}: "
                                   f"{row['ratio']:.2f}×" for row in rows if row["ratio"] > row["target"]],
        "Where an epoch is a single step (n = batch), the suite's work per epoch is not spread over"
        " other steps: checking the batch's indices (two reductions, so a bad index is an error rather"
        " than MXNet's silent clipping or NumPy's wrap-around), one gather, and converting the epoch's"
        " losses, some 20-30 µs against a plain loop that checks nothing. With 10 or more steps per"
        " epoch it vanishes in the noise.")
    target_table += explain_misses(
        "the exponent is missed", [f"{row['backend']} k = {row['exponent']:.2f} (its plain loop: "
                                   f"{plain_k[row['backend']]:.2f})" for row in scaling
                                   if row["loop"] == "suite" and not 0.9 <= row["exponent"] <= 1.1],
        "An epoch over shuffled rows reads each row once from wherever it lies: at"
        " 1e4 rows × 100 features the 4 MB data set sits in cache, at 1e6 (400 MB) each row is a memory"
        " access, so the time per epoch of the suite and of the plain loop alike grows faster than n on"
        " this shared machine; the fitted k of both moves between about 1.0 and 1.3 from run to run.")
    target_table += explain_misses(
        "workers miss 0.65× the inline wall time",
        [f"{r['task']} {r['ratio']:.2f}×" for r in worker_runs if r["ratio"] > 0.65],
        "One worker per backend serves all its"
        " seeds (its framework is imported once), so the run cannot end before the slowest framework's"
        " seeds have run one after another: in the MLP run MXNet's training alone is about 70 % of the"
        " inline run's training time, and in the linreg run the imports, which workers overlap, are most"
        " of it. With two cores the other backends' work hides behind that path; it cannot shorten it.")
    target_table += explain_misses(
        "growth beyond the 1000-row run exceeds 3× the data",
        [f"{r['backend']} {r['over_fixed_per_data']:.2f}×" for r in estimates
         if "2000 epochs" in r["case"] and r["over_fixed_per_data"] > 3],
        "Nothing of the size epochs ×"
        " rows remains (before the batch orders were made one epoch at a time this run grew by about 620 MB,"
        " some 430× its data). What is left is the float64 labels drawn before they are rounded, MXNet's own"
        " copy of the data, and memory the C allocator keeps after a full-batch step frees its temporaries"
        " (glibc serves later blocks of that size from its heap instead of returning them). With"
        " MALLOC_MMAP_THRESHOLD_=131072 in the environment, measured at 1e6 rows: numpy 2.0×, torch 1.9×,"
        " mxnet 3.8× (its own copy of the data, and its storage pool), against 2.5×, 4.8× and 4.5× without;"
        " it makes NumPy's full-batch steps about twice as slow, so the suite does not set it.")
    target_table += explain_misses(
        "peak memory exceeds the import baseline + 3× data",
        [f"{r['backend']} {r['growth_over_dataset']:.2f}×" for r in memory if r["growth_over_dataset"] > 3],
        "TensorFlow cannot train on NumPy's memory: converting the 385 MB array (tf.constant, as"
        " tf.convert_to_tensor) raises the peak by 784 MB, two copies of which one is freed at once"
        " (measured: +1172 MB over the data right after the conversion, +804 MB once it returns); a zero-copy"
        " view through DLPack aborts TensorFlow (Check failed: IsAligned()) on NumPy's 16-byte-aligned memory.")
    target_table += explain_misses(
        "compare.py --task linreg takes 8 s or more", [f"{np.median(wall):.2f} s"] if np.median(wall) >= 8 else [],
        "Five workers start at once on two cores and each imports its framework first: the start-up table"
        " below (a worker alone: TensorFlow 3.2 s, MXNet 1.5 s, torch 1.2 s, JAX 0.7 s) adds up to more CPU"
        " time than the run's training, so the wall time is bound by the imports; with --backends"
        " numpy,torch,mxnet,jax it stays under the 8 s set before TensorFlow was added.")
    sections.insert(1, "## Targets\n\n" + target_table)
    if reference:
        sections.append("## MXNet: the suite against the Gluon reference loop (linreg 1000×2, batches of 10)\n\n"
                        + markdown([reference], {"suite_us": "{:.0f}", "reference_us": "{:.0f}",
                                                 "speedup": "{:.2f}"}))
    sections.append("## Full batch at 1e6×100 against the bare matrix products (ms per step)\n\n" + markdown(bare))
    sections.append("## Seconds per epoch against n (features 100, batches of 1000)\n\n" + markdown(scaling))
    sections.append("## Peak resident memory, 1e6×100 float32, full batch, 2 epochs (MB)\n\n" + markdown(memory))
    sections.append("## Memory estimated before a run against its measured peak (MB)\n\n"
                    "growth: peak over the baseline of imported, warmed-up frameworks; fixed: the same command's "
                    "growth at 1000 rows and 1 epoch; estimate: what compare.py computes from the settings before "
                    "anything is built (without the frameworks' own import cost, estimated apart)\n\n"
                    + markdown(estimates))
    sections.append("## Workers against inline (medians of 3 alternated runs) and a worker's start-up\n\n"
                    "ratio: wall time with a worker per backend over the inline wall time; *_step_ratio: µs per "
                    "training step inside a worker (with --jobs 1: no other worker on the cores) over inline; "
                    "start_and_load_s: from starting the process to its framework imported\n\n"
                    + markdown(worker_runs) + "\n\n" + markdown(worker_starts))
    sections.append("## Eager against compiled: the suite against the plain loop in the same mode (float32, SGD, "
                    f"µs per step, medians of {args.repeats} interleaved repeats)\n\n"
                    + markdown(modes, {"suite_us": "{:.1f}", "plain_us": "{:.1f}", "ratio": "{:.2f}"}))
    sections.append("## Compile cost: what compare.py reports, each run in a fresh process (medians of 3)\n\n"
                    "compile_ms: the first step at each batch size, where tracing and compiling happen (torch: "
                    "with Inductor's on-disk cache warm from the run before); steady_us_per_step: every other "
                    "step; compile_in_steps: how many steady steps the compile costs\n\n"
                    + markdown(compiles, {"compile_ms": "{:.1f}", "steady_us_per_step": "{:.1f}",
                                          "compile_in_steps": "{:.0f}"}))
    sections.append(f"Took {time.perf_counter() - started:.0f} s. Peak memory is VmHWM in a fresh process "
                    "(reset at its start); "
                    "the baseline is after importing the framework and building a model.")
    text = "\n\n".join(sections) + "\n"
    sweep_marker = "<!-- benchmarks/sweep.py writes below this line -->"  # its section is kept as it is
    previous = Path(args.out).read_text() if Path(args.out).exists() else ""
    if sweep_marker in previous:
        text = text.rstrip("\n") + "\n\n" + sweep_marker + previous.split(sweep_marker, 1)[1]
    Path(args.out).write_text(text)
    print(text)
    return 0 if all(ok for _, _, ok in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
