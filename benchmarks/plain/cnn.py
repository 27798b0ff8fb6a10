"""The plain CNN loops, the yardstick of the suite's default CNN (--task cnn), one per framework, written as
each framework's tutorials write them: torch and Gluon on NCHW data, Flax and Keras on NHWC (the data moved
once, before the loop, as a user of those frameworks holds images). Each takes the canonical parameters,
X (n, 1, 8, 8) float32, integer labels and the batches, prepares outside the timing and returns the epoch.

The model: conv(1→6, 3×3, same), relu, maxpool 2, conv(6→16, 3×3, same), relu, maxpool 2, flatten, linear(64→10);
cross-entropy on logits, SGD at LR.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import get_backend

LR = 0.1
CONVS, LINEAR = ("1", "4"), "8"  # the canonical layer indices (the Input is layer 0)


def channels_last_inputs(weight: np.ndarray) -> np.ndarray:
    """The linear layer's weight for inputs flattened from (16, 2, 2) channels-last: the same function."""
    return weight.reshape(len(weight), 16, 2, 2).transpose(0, 2, 3, 1).reshape(len(weight), -1)


def torch_cnn(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
              batches: list[np.ndarray]) -> Callable[[], None]:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    for native, index in ((0, CONVS[0]), (3, CONVS[1]), (7, LINEAR)):
        model[native].weight.data = torch.from_numpy(params[f"{index}.weight"].astype(np.float32))
        model[native].bias.data = torch.from_numpy(params[f"{index}.bias"].astype(np.float32))
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=LR), nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def run() -> None:
        for batch in batches:
            idx = torch.from_numpy(batch)
            optimizer.zero_grad()
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            optimizer.step()

    return run


def mxnet_cnn(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
              batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("mxnet")  # its numpy.bool shim must run before MXNet is imported
    from mxnet import autograd, gluon, nd

    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(6, 3, padding=1, in_channels=1), gluon.nn.Activation("relu"), gluon.nn.MaxPool2D(2),
            gluon.nn.Conv2D(16, 3, padding=1, in_channels=6), gluon.nn.Activation("relu"), gluon.nn.MaxPool2D(2),
            gluon.nn.Flatten(), gluon.nn.Dense(10, in_units=64))
    net.initialize()
    for native, index in ((0, CONVS[0]), (3, CONVS[1]), (7, LINEAR)):
        net[native].weight.set_data(nd.array(params[f"{index}.weight"], dtype="float32"))
        net[native].bias.set_data(nd.array(params[f"{index}.bias"], dtype="float32"))
    net.hybridize(static_alloc=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    loss_fn.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR}, kvstore=None)
    Xn, yn = nd.array(X), nd.array(y)

    def run() -> None:
        for batch in batches:
            idx = nd.array(batch, dtype="int64")
            with autograd.record():
                loss = loss_fn(net(nd.take(Xn, idx)), nd.take(yn, idx))
            loss.backward()
            trainer.step(len(batch))
        nd.waitall()

    return run


def jax_cnn(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
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
    for native, index in ((0, CONVS[0]), (3, CONVS[1])):
        model.layers[native].kernel.value = jnp.asarray(params[f"{index}.weight"].transpose(2, 3, 1, 0), jnp.float32)
        model.layers[native].bias.value = jnp.asarray(params[f"{index}.bias"], jnp.float32)
    model.layers[7].kernel.value = jnp.asarray(channels_last_inputs(params[f"{LINEAR}.weight"]).T, jnp.float32)
    model.layers[7].bias.value = jnp.asarray(params[f"{LINEAR}.bias"], jnp.float32)
    graph, weights = nnx.split(model, nnx.Param)
    tx = optax.sgd(LR)
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


def tensorflow_cnn(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                   batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("tensorflow")  # selects Keras's TensorFlow backend, as the suite runs it
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, padding="same"),
                              keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
                              keras.layers.Conv2D(16, 3, padding="same"), keras.layers.ReLU(),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
    for native, index in ((0, CONVS[0]), (3, CONVS[1])):
        model.layers[native].kernel.assign(params[f"{index}.weight"].transpose(2, 3, 1, 0).astype(np.float32))
        model.layers[native].bias.assign(params[f"{index}.bias"].astype(np.float32))
    model.layers[7].kernel.assign(channels_last_inputs(params[f"{LINEAR}.weight"]).T.astype(np.float32))
    model.layers[7].bias.assign(params[f"{LINEAR}.bias"].astype(np.float32))
    optimizer = keras.optimizers.SGD(LR)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    Xt, yt = tf.constant(X.transpose(0, 2, 3, 1)), tf.constant(y.astype(np.int32))

    def run() -> None:
        for batch in batches:
            idx = tf.constant(batch)
            loss = step(tf.gather(Xt, idx), tf.gather(yt, idx))
        float(loss)

    return run


PLAIN_CNN = {"torch": torch_cnn, "mxnet": mxnet_cnn, "jax": jax_cnn, "tensorflow": tensorflow_cnn}
