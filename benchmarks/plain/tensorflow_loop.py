"""The plain TensorFlow loop, the yardstick of the suite's tensorflow backend, written by hand;
from the suite it takes only the spec's layer type and get_backend's import-time setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear, get_backend

from . import CNN_CONVS, CNN_LINEAR, CNN_LR, LR, SEQUENCE_HIDDEN, SEQUENCE_LR, channels_last_inputs


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


def cnn_loop(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                   batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("tensorflow")  # selects Keras's TensorFlow backend, as the suite runs it
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, padding="same"),
                              keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
                              keras.layers.Conv2D(16, 3, padding="same"), keras.layers.ReLU(),
                              keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
    for native, index in ((0, CNN_CONVS[0]), (3, CNN_CONVS[1])):
        model.layers[native].kernel.assign(params[f"{index}.weight"].transpose(2, 3, 1, 0).astype(np.float32))
        model.layers[native].bias.assign(params[f"{index}.bias"].astype(np.float32))
    model.layers[7].kernel.assign(channels_last_inputs(params[f"{CNN_LINEAR}.weight"]).T.astype(np.float32))
    model.layers[7].bias.assign(params[f"{CNN_LINEAR}.bias"].astype(np.float32))
    optimizer = keras.optimizers.SGD(CNN_LR)
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


def lstm_loop(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("tensorflow")  # selects Keras's TensorFlow backend, as the suite runs it
    import keras
    import tensorflow as tf

    model = keras.Sequential([keras.Input(X.shape[1:]), keras.layers.LSTM(SEQUENCE_HIDDEN), keras.layers.Dense(1)])
    optimizer, loss_fn = keras.optimizers.SGD(SEQUENCE_LR), keras.losses.MeanSquaredError()

    @tf.function
    def step(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    Xt, yt = tf.constant(X), tf.constant(y)

    def run() -> None:
        for batch in batches:
            idx = tf.constant(batch)
            loss = step(tf.gather(Xt, idx), tf.gather(yt, idx))
        float(loss)

    return run
