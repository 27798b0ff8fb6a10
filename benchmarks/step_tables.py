"""The per-step tables: the suite's training step against the plain loop, in each mode, against the Gluon
reference and the bare matrix products, over n; and the compile cost compare.py reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from plain import LR, get_plain_loop
from plain.mxnet_loop import reference_loop

from backend_compare.backends import Backend, Linear, get_backend, make_spec, mlp_spec, param_shapes

ROOT = Path(__file__).resolve().parents[1]
MIN_STEPS = 50  # optimiser steps per timing at the least ...
MIN_ROWS = 200_000  # ... or this many rows processed, whichever comes first
TARGETS = {"torch": 1.10, "mxnet": 1.10, "numpy": 1.30, "jax": 1.10, "tensorflow": 1.10}


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
                                "plain": epochs_of(get_plain_loop(name)(spec, params, X, y, batches), epochs)}
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
                        "plain": get_plain_loop(name)(spec, params, X, y, batches, compiled=mode == "compiled")}
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
    reference, steps = reference_loop(spec, params, X, y, 10)
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
                    "plain": get_plain_loop(name)(spec, params, X, y, batches)}
            for key, seconds in interleaved(runs, repeats).items():
                epoch_seconds[key].append(float(np.median(seconds)))
        for key, seconds in epoch_seconds.items():
            exponent = float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])
            rows.append({"backend": name, "loop": key,
                         **{f"n={n:.0e}": s for n, s in zip(sizes, seconds, strict=True)}, "exponent": exponent})
    return rows
