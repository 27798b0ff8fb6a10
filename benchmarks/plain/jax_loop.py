"""The plain JAX loop, the yardstick of the suite's jax backend, written by hand;
from the suite it takes only the spec's layer type and get_backend's import-time setting."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear, get_backend

from . import LR


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
