"""The plain JAX loop, the yardstick of the suite's jax backend, written by hand;
from the suite it takes only the spec's layer type and get_backend's import-time setting."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear, get_backend

from . import CNN_CONVS, CNN_LINEAR, CNN_LR, LR, SEQUENCE_HIDDEN, SEQUENCE_LR, channels_last_inputs


def plain_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
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


def cnn_loop(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
            batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("jax")  # the backend's x64 setting, as the suite runs it
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    rngs = nnx.Rngs(0)
    pool = functools.partial(nnx.max_pool, window_shape=(2, 2), strides=(2, 2))
    model = nnx.Sequential(
        nnx.Conv(1, 6, (3, 3), padding="SAME", dtype=jnp.float32, rngs=rngs), nnx.relu, pool,
        nnx.Conv(6, 16, (3, 3), padding="SAME", dtype=jnp.float32, rngs=rngs), nnx.relu, pool,
        lambda x: x.reshape(x.shape[0], -1), nnx.Linear(64, 10, dtype=jnp.float32, rngs=rngs))
    for native, index in ((0, CNN_CONVS[0]), (3, CNN_CONVS[1])):
        model.layers[native].kernel.value = jnp.asarray(params[f"{index}.weight"].transpose(2, 3, 1, 0), jnp.float32)
        model.layers[native].bias.value = jnp.asarray(params[f"{index}.bias"], jnp.float32)
    model.layers[7].kernel.value = jnp.asarray(channels_last_inputs(params[f"{CNN_LINEAR}.weight"]).T, jnp.float32)
    model.layers[7].bias.value = jnp.asarray(params[f"{CNN_LINEAR}.bias"], jnp.float32)
    graph, weights = nnx.split(model, nnx.Param)
    tx = optax.sgd(CNN_LR)
    state = {"params": weights, "opt": tx.init(weights)}

    def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
        logits = nnx.merge(graph, p)(xb)
        return optax.losses.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def step(p: Any, opt: Any, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(p, updates), opt, loss

    Xj, yj = jnp.asarray(X.transpose(0, 2, 3, 1)), jnp.asarray(y.astype(np.int32))

    def run() -> None:
        p, opt = state["params"], state["opt"]
        for batch in batches:
            idx = jnp.asarray(batch)
            p, opt, loss = step(p, opt, Xj[idx], yj[idx])
        jax.block_until_ready(loss)
        state["params"], state["opt"] = p, opt

    return run


def lstm_loop(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("jax")  # the backend's x64 setting, as the suite runs it
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class Forecaster(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            cell = nnx.OptimizedLSTMCell(1, SEQUENCE_HIDDEN, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
            self.lstm = nnx.RNN(cell, rngs=False)  # a zero initial state given, as the suite's: no carry RNG
            self.head = nnx.Linear(SEQUENCE_HIDDEN, 1, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            zeros = jnp.zeros((x.shape[0], SEQUENCE_HIDDEN), x.dtype)
            return self.head(self.lstm(x, initial_carry=(zeros, zeros))[:, -1])

    graph, weights, rest = nnx.split(Forecaster(nnx.Rngs(0)), nnx.Param, ...)
    tx = optax.sgd(SEQUENCE_LR)
    state = {"params": weights, "opt": tx.init(weights)}

    def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
        return jnp.mean((nnx.merge(graph, p, rest)(xb) - yb) ** 2)

    @jax.jit
    def step(p: Any, opt: Any, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, opt = tx.update(grads, opt)
        return optax.apply_updates(p, updates), opt, loss

    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def run() -> None:
        p, opt = state["params"], state["opt"]
        for batch in batches:
            idx = jnp.asarray(batch)
            p, opt, loss = step(p, opt, Xj[idx], yj[idx])
        jax.block_until_ready(loss)

    return run
