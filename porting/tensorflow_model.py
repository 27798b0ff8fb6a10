"""A Keras model or layer as the port check reads it: its layers seen through their `call` while a forward runs
(an instance's `call`, which Layer.__call__ looks up on the instance), in the order it calls them; a Keras optimiser
and Keras losses under tf.GradientTape for training. A Keras model's dtype is fixed when it is built."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN, AvgPool2d, BatchNorm, Conv2d, Embedding, LayerNorm, Linear, Link, MaxPool2d
from .native import (
    TWO_PASS,
    Arrays,
    Found,
    NativeModel,
    Training,
    Trajectory,
    batches,
    canonical,
    first,
    not_readable,
)

READS = ("Dense", "Conv2D", "LSTM", "GRU", "SimpleRNN", "BatchNormalization", "LayerNormalization", "Embedding",
         "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Activation", "ReLU", "LeakyReLU")
_KERNEL = Link("kernel", (1, 0))
_CONV_KERNEL = Link("kernel", (2, 3, 1, 0))  # (H, W, I/g, O) → (O, I/g, H, W)


def _activation(function: Any) -> str:
    """A Keras activation function's canonical name ("" for linear)."""
    name = getattr(function, "__name__", None) or getattr(getattr(function, "func", None), "__name__", "") or ""
    keywords = getattr(function, "keywords", {}) or {}
    if name == "linear":
        return ""
    if name == "gelu" and keywords.get("approximate", False):
        return "gelu_tanh"
    return {"swish": "silu"}.get(name, name)


def _channels_first_axis(layer: Any) -> bool:
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    return axis in (1,)


def _found(path: str, layer: Any, side: str) -> Found | None:
    import keras

    layers = keras.layers
    native_type = f"keras.layers.{type(layer).__name__} {layer.name!r}"
    if isinstance(layer, layers.Dense):
        kernel = layer.kernel
        return Found(path, Linear(kernel.shape[0], layer.units, layer.use_bias), layer, native_type,
                     links={"weight": _KERNEL, **({"bias": Link("bias")} if layer.use_bias else {})},
                     fused=_activation(layer.activation))
    if isinstance(layer, layers.Conv2D) and type(layer).__name__ == "Conv2D":
        if layer.data_format != "channels_last":
            raise not_readable(side, path, f"{native_type} with data_format={layer.data_format!r} (Keras convolves "
                               "channels first only on a GPU)", READS)
        kernel = layer.kernel
        conv = Conv2d(kernel.shape[2] * layer.groups, layer.filters, tuple(layer.kernel_size), tuple(layer.strides),
                      layer.padding, tuple(layer.dilation_rate), layer.groups, layer.use_bias)
        return Found(path, conv, layer, native_type,
                     links={"weight": _CONV_KERNEL, **({"bias": Link("bias")} if layer.use_bias else {})},
                     fused=_activation(layer.activation))
    if isinstance(layer, layers.BatchNormalization):
        if not (layer.center and layer.scale) or layer.renorm:
            raise not_readable(side, path, f"{native_type} without center or scale, or with renorm", READS)
        found = Found(path, BatchNorm(layer.gamma.shape[0], layer.momentum, layer.epsilon), layer, native_type,
                      links={"weight": Link("gamma"), "bias": Link("beta")},
                      state_links={"running_mean": Link("moving_mean"), "running_var": Link("moving_variance")})
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(layer, layers.LayerNormalization):
        axis = layer.axis if isinstance(layer.axis, int) else list(layer.axis)
        if axis not in (-1, [-1]) or layer.center != layer.scale or getattr(layer, "rms_scaling", False):
            raise not_readable(side, path, f"{native_type} over axis {axis}, or only one of center and scale", READS)
        width = layer.gamma.shape[0] if layer.scale else None
        found = Found(path, LayerNorm(width or 1, layer.epsilon, bool(layer.scale)), layer, native_type,
                      links={"weight": Link("gamma"), "bias": Link("beta")} if layer.scale else {})
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(layer, layers.Embedding):
        return Found(path, Embedding(layer.input_dim, layer.output_dim), layer, native_type,
                     links={"weight": Link("embeddings")})
    if isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D):
        if layer.padding != "valid":
            raise not_readable(side, path, f"{native_type} with padding={layer.padding!r}", READS)
        args = (tuple(layer.pool_size), tuple(layer.strides))
        return Found(path, MaxPool2d(*args) if isinstance(layer, layers.MaxPooling2D) else AvgPool2d(*args), layer,
                     native_type)
    if isinstance(layer, layers.LSTM | layers.GRU | layers.SimpleRNN):
        return _recurrent(path, layer, native_type, side)
    if isinstance(layer, layers.Activation):
        return Found(path, None, layer, native_type, kind="activation",
                     settings={"function": _activation(layer.activation) or "identity"})
    if isinstance(layer, layers.LeakyReLU):
        return Found(path, None, layer, native_type, kind="activation",
                     settings={"function": "leaky_relu", "negative_slope": float(layer.negative_slope)})
    if isinstance(layer, layers.ReLU):
        if layer.max_value is not None or layer.threshold:
            raise not_readable(side, path, f"{native_type} with max_value or threshold", READS)
        if layer.negative_slope:
            return Found(path, None, layer, native_type, kind="activation",
                         settings={"function": "leaky_relu", "negative_slope": float(layer.negative_slope)})
        return Found(path, None, layer, native_type, kind="activation", settings={"function": "relu"})
    if isinstance(layer, layers.Flatten):
        return Found(path, None, layer, native_type, kind="flatten")
    if isinstance(layer, layers.Dropout):
        return Found(path, None, layer, native_type, kind="dropout", settings={"rate": layer.rate})
    return None


def _recurrent(path: str, layer: Any, native_type: str, side: str) -> Found:
    import keras

    cell = layer.cell
    if layer.go_backwards or layer.return_state or layer.stateful:
        raise not_readable(side, path, f"{native_type} going backwards, returning its state or stateful", READS)
    gru = isinstance(layer, keras.layers.GRU)
    if gru and not cell.reset_after:
        raise not_readable(side, path, f"{native_type}(reset_after=False), a formulation torch, Gluon and Flax do "
                           "not have (the reset before the recurrent product)", READS)
    kind = GRU if gru else LSTM if isinstance(layer, keras.layers.LSTM) else RNN
    blocks = (1, 0, 2) if gru else None  # Keras's GRU gates z, r, h against torch's r, z, n
    links = {"weight_ih": Link("cell.kernel", (1, 0), blocks), "weight_hh": Link("cell.recurrent_kernel", (1, 0),
                                                                                   blocks)}
    if cell.use_bias and gru:  # both biases, rows 0 and 1 of one (2, 3H) variable
        links["bias_ih"] = Link("cell.bias", None, blocks, part=0)
        links["bias_hh"] = Link("cell.bias", None, blocks, part=1)
    elif cell.use_bias:
        links["bias_ih"] = Link("cell.bias")
    bias = "none" if not cell.use_bias else "two" if gru else "input"
    input_size = cell.kernel.shape[0]
    found = Found(path, kind(input_size, cell.units, bool(layer.return_sequences), bias), layer, native_type,
                  links=links)
    functions = {"activation": cell.activation, "gate activation": getattr(cell, "recurrent_activation", None)}
    found.settings = {**found.settings, **{key: _activation(value) or "identity" for key, value in functions.items()
                                           if value is not None}}
    return found


def _walk(layer: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every layer by its position (Keras's own names count layers made in the process, so they change between
    two models of one factory; the table shows them beside)."""
    for index, child in enumerate(child for child in layer._layers if not isinstance(child, _input_layer())):
        path = f"{prefix}.{index}" if prefix else str(index)
        yield path, child
        if not child.weights or not _known(child):
            yield from _walk(child, path)


def _input_layer() -> type:
    import keras

    return keras.layers.InputLayer


def _known(layer: Any) -> bool:
    import keras

    layers = keras.layers
    return isinstance(layer, layers.Dense | layers.Conv2D | layers.BatchNormalization | layers.LayerNormalization
                      | layers.Embedding | layers.LSTM | layers.GRU | layers.SimpleRNN)


def _zero_or(gradient: Any, variable: Any) -> np.ndarray:
    return np.zeros(tuple(variable.shape), np.dtype(variable.dtype)) if gradient is None else np.array(gradient)


class KerasModel(NativeModel):
    framework = "tensorflow"
    title = "Keras"
    weight_decay = "decoupled: w −= lr·wd·w beside the update (keras/src/optimizers/base_optimizer.py)"
    adam_eps = "1e-07, added to √v, the bias correction in the step size (keras/src/optimizers/adam.py)"

    @classmethod
    def accepts(cls, model: Any) -> bool:
        keras = sys.modules.get("keras")
        return keras is not None and isinstance(model, keras.layers.Layer)

    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        import keras

        if not self.model.built:
            raise ValueError(f"model {self.side}: the Keras model is not built: give it an Input (or call build) in "
                             "its factory")
        watched = list(_walk(self.model, "")) or [(self.model.name, self.model)]
        found = []
        for path, layer in watched:
            item = _found(path, layer, self.side)
            if item is None and layer._trainable_variables and not layer._layers \
                    and not isinstance(layer, keras.layers.InputLayer):
                raise not_readable(self.side, path, f"keras.layers.{type(layer).__name__}", READS)
            if item is not None and item.has_params:
                item.initialiser = ", ".join(f"{name.removesuffix('_initializer')} {type(value).__name__}"
                                             for name, value in vars(getattr(layer, "cell", layer)).items()
                                             if name.endswith("_initializer") and value is not None)
            found.append((path, layer, item))
        return found

    def _channels_last(self, found: list[Found]) -> bool:
        return any(item.kind in ("conv2d", "maxpool", "avgpool") for item in found)

    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        calls: list[tuple[int, Any, Any]] = []
        seen: set[int] = set()

        def recording(index: int, call: Any) -> Any:
            def record(*args: Any, **kwargs: Any) -> Any:
                output = call(*args, **kwargs)
                if index not in seen and args:
                    seen.add(index)
                    calls.append((index, np.array(args[0]), np.array(output)))
                return output
            return record

        patched = []
        try:
            for index, layer in enumerate(modules):
                if "call" not in vars(layer):
                    layer.call = recording(index, layer.call)
                    patched.append(layer)
            output = first(self.model(X, training=train))
        finally:
            for layer in patched:
                del layer.call
        return np.array(output), calls

    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        return [(variable.path, variable) for variable in module.weights]

    def _set_rate(self, found: Found, rate: float) -> None:
        found.module.rate = rate

    def dtype(self) -> str:
        weights = self.model.weights
        return str(np.dtype(weights[0].dtype)) if weights else str(self.model.dtype)

    def cast(self, dtype: str) -> None:
        held = {str(np.dtype(weight.dtype)) for weight in self.model.weights}
        if held - {dtype}:
            raise ValueError(f"model {self.side}: a Keras model's dtype is fixed when it is built, and it holds "
                             f"{', '.join(sorted(held))}: build it with dtype={dtype!r} (or keras.config.set_floatx"
                             f"({dtype!r})) in its factory")

    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        return {name: np.array(link.of(found.module)) for name, link in links.items()}

    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        for name, link in links.items():
            link.of(found.module).assign(values[name])

    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        import keras
        import tensorflow as tf

        options: dict[str, Any] = {"learning_rate": training.lr}
        if training.weight_decay:
            options["weight_decay"] = training.weight_decay  # Keras's: decoupled, w −= lr·wd·w
        if training.optimizer == "adam":
            optimizer = keras.optimizers.Adam(**options)
        else:
            optimizer = keras.optimizers.SGD(momentum=training.momentum if training.optimizer == "momentum" else 0.0,
                                             **options)
        loss_fn = (keras.losses.MeanSquaredError() if training.loss == "mse"
                   else keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # the mean over every position
        inputs = tf.constant(self.native_input(X))
        target = tf.constant(self.native_targets(y, training))
        variables = self.model.trainable_variables
        losses: list[float] = []
        params: list[Arrays] = []
        grads: Arrays = {}
        for start, stop in batches(len(X), training):
            with tf.GradientTape() as tape:
                output = first(self.model(inputs[start:stop], training=True))
                loss = loss_fn(tf.reshape(target[start:stop], output.shape) if training.loss == "mse"
                               else target[start:stop], output)
            gradients = tape.gradient(loss, variables)
            if not grads:  # a frozen layer (trainable=False) or one off the loss's path: a zero gradient
                by_variable = {id(variable): gradient for variable, gradient in zip(variables, gradients,
                                                                                    strict=True)}
                grads = {f"{item.path}.{name}": canonical(item, name, link, _zero_or(by_variable.get(id(
                    link.of(item.module))), link.of(item.module))) for item in self.layers
                         for name, link in item.links.items()}
            optimizer.apply_gradients([(gradient, variable) for gradient, variable in zip(gradients, variables,
                                                                                          strict=True)
                                       if gradient is not None])
            losses.append(float(loss))
            params.append(self.params())
        return Trajectory(losses, params, grads)
