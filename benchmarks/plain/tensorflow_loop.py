"""The plain TensorFlow loop, the yardstick of the suite's tensorflow backend, written by hand;
from the suite it takes only the spec's layer type and get_backend's import-time setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear, get_backend

from . import LR


def plain_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
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
