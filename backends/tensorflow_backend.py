"""TensorFlow backend: Keras 3 layers, losses and optimisers on TensorFlow, tf.GradientTape, the step
under tf.function.

Importing this module selects Keras's TensorFlow backend (KERAS_BACKEND) and keeps TensorFlow's
start-up log lines off stderr; it refuses to load when Keras was already imported for another backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..layers import Build, Link, built, input_shape, out_features
from .base import Backend, Params
from .numerics import on
from .precision import NUMERICS

_INSTALL = "pip install tensorflow-cpu==2.21.0 keras==3.15.1"


# C++ log lines TensorFlow writes to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says: INFO on import
# ("oneDNN custom operations are on"), and, when JAX set up absl's logging first in the process, a
# warning per float64 op that the oneDNN graph rewrites skip while a tf.function is first optimised.
_CHATTER = ("I0000 ", "WARNING: All log messages before absl::InitializeLog()")
_CHATTER_PARTS = ("] Not handling type DT_DOUBLE",)


@contextlib.contextmanager
def _native_log_filtered() -> Iterator[None]:
    """File descriptor 2 through a pipe meanwhile: a thread passes on, as it comes, every line that is
    not known chatter (_CHATTER), so a real error still shows (one written the instant before an abort
    may be lost with the process; a worker's row then still says how it died)."""
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    stderr = os.dup(2)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                text = line.decode(errors="replace")
                if not text.startswith(_CHATTER) and not any(part in text for part in _CHATTER_PARTS):
                    os.write(stderr, line)

    reader = threading.Thread(target=forward, daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(stderr, 2)  # closes the pipe's last write end: the reader reads to its end and stops
        reader.join(timeout=5)
        os.close(stderr)


if "keras" in sys.modules and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(f"the tensorflow backend needs Keras on TensorFlow, but Keras was already imported with "
                      f"KERAS_BACKEND={os.environ['KERAS_BACKEND']!r} in this process")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no INFO and WARNING lines from the C++ side after import
try:
    with _native_log_filtered():
        import keras
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config
except ImportError as err:
    raise ImportError(f"the tensorflow backend needs TensorFlow and Keras 3 ({err}); install it with: {_INSTALL}"
                      ) from err
from ..optimizers.tensorflow_optimizer import KerasOptimizer  # noqa: E402 (it imports Keras: after KERAS_BACKEND is set)


class _NoRetracingWarning(logging.Filter):
    """TensorFlow warns when tf.functions of one Python function trace often. Here each model traces
    its own step once (and again after each optimiser reset), by design: the warning would only alarm."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingWarning())


@contextlib.contextmanager
def _floatx(dtype: str) -> Iterator[None]:
    """Keras's float type set to `dtype` while the block runs (the Keras way to work in float64)."""
    saved = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(saved)


def _shapes(arg: Any) -> Any:
    """An argument's shape (a list's: each item's), what a tf.function without a signature traces for."""
    return tuple(_shapes(item) for item in arg) if isinstance(arg, list | tuple) else tuple(arg.shape)


class TensorflowBackend(Backend):
    name = "tensorflow"
    framework = "tensorflow"  # the key of its translators in each layer module
    replay = True
    native_init_description = ("keras.layers.Dense defaults: glorot_uniform kernels, zero biases, from "
                               "keras.random.SeedGenerator(seed)")
    modes = ("eager", "compiled")
    usual_mode = "compiled"
    keeps_state = True  # non-trainable variables (moving statistics), assigned by the layers when training=True
    # Keras's dtype policies: "bfloat16" throughout, or "mixed_bfloat16" (float32 variables, bfloat16 compute;
    # losses in float32) with a LossScaleOptimizer for mixed_float16, as keras/src/dtype_policies describe them
    runs = NUMERICS

    def _build(self) -> None:
        # Every Keras object gets the dtype explicitly: layers, losses and the optimiser's learning-rate
        # variable otherwise take keras.config.floatx(), float32 by default, whatever the weights are.
        if self.deterministic:  # process-wide and for good, as TensorFlow's docs set it
            tf.config.experimental.enable_op_determinism()
        if self.device == "cpu" and tf.config.list_physical_devices("GPU"):  # TensorFlow places ops on a GPU first
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:  # its GPU already started in this process: it cannot be hidden any more
                raise ValueError("device cpu: TensorFlow started its GPU in this process before; run it in a "
                                 "process of its own (compare.py's process executor)") from None
        self._params_dtype = dtype = self.numerics.params  # the variables', the inputs' and the losses' dtype
        shape, n_out = input_shape(self.spec), out_features(self.spec)
        inputs = keras.Input(shape, dtype=dtype)
        build = Build(self.numerics.name.replace("-", "_"))  # the policy's name: mixed_bfloat16, bfloat16, …
        self._translators = [self.translator(layer) for layer in self.spec]
        self._model = keras.Sequential([inputs, *built(self._translators, self.spec, build)])
        # Each canonical parameter with the Keras layer that holds it and the layout it is held in.
        self._links: dict[str, tuple[Any, Link]] = {
            f"{index}.{name}": (native, link)
            for index, (native, translator, layer) in enumerate(zip(self._model.layers, self._translators, self.spec,
                                                                    strict=True))
            for name, link in translator.links_for(layer).items() if name in layer.params()}
        self._state_links: dict[str, tuple[Any, Link]] = {
            f"{index}.{name}": (native, link)
            for index, (native, translator, layer) in enumerate(zip(self._model.layers, self._translators, self.spec,
                                                                    strict=True))
            for name, link in translator.state_links_for(layer).items() if name in layer.state()}
        # trainable_variables' order is the order of the gradients a tape returns for them.
        # Each variable's canonical names (two where it holds two arrays: a GRU's (2, 3H) bias)
        by_variable: dict[int, list[str]] = {}
        for name, (native, link) in self._links.items():
            by_variable.setdefault(id(link.of(native)), []).append(name)
        self._gradient_names = [by_variable[id(variable)] for variable in self._model.trainable_variables]
        mse = keras.losses.MeanSquaredError(dtype=self._params_dtype)  # the mean over every element, as torch's
        self._loss_fn: Callable[[Any, Any], Any] = {
            "mse": mse,
            "half-mse": lambda target, output: 0.5 * mse(target, output),
            "huber": keras.losses.Huber(delta=self.huber_delta, dtype=self._params_dtype),  # torch's HuberLoss(delta)
            "l1": keras.losses.MeanAbsoluteError(dtype=self._params_dtype),
            # from_logits=True: no clipping (the default takes outputs for probabilities, clipped to [1e-7, 1 − 1e-7])
            "bce-with-logits": keras.losses.BinaryCrossentropy(from_logits=True, dtype=self._params_dtype),
            # from_logits=True: the default (False) takes the outputs for probabilities and gives another number.
            "cross-entropy": (self._smoothed_cross_entropy(n_out) if self.label_smoothing else
                              self._weighted_cross_entropy() if self.class_weights is not None else
                              keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=self._params_dtype)),
        }[self.loss_name]
        y_width = 1 if self.classifies else n_out  # class indices: one per row
        X_spec, y_spec = tf.TensorSpec([None, *shape], dtype), tf.TensorSpec([None, y_width], dtype)
        # Any batch size, one trace: the last, shorter batch of an epoch does not trace again.
        self._forward = self._compiled(lambda X: self._model(X, training=False), [X_spec])
        self._mean_loss = self._compiled(lambda X, y: self._loss_fn(y, self._model(X, training=False)),
                                         [X_spec, y_spec])
        # A mask per dropout layer, of any batch size, in the order of the layers
        keeps_spec = [tf.TensorSpec([None, *shape], self.numerics.compute) for shape in self._masked_shapes()]
        self._value_and_grad = self._compiled(self._loss_and_gradients, [X_spec, y_spec, keeps_spec])
        self._signature = [X_spec, y_spec, keeps_spec]

    def math_modes(self) -> dict[str, str]:
        tf32 = on(tf.config.experimental.tensor_float_32_execution_enabled())
        return {"device": self.device, "TF32 matmul": tf32, "TF32 convolution": tf32,
                # read where enable_op_determinism sets it: TensorFlow exports no reader (framework/config.py:1113)
                "deterministic": on(tf_config.is_op_determinism_enabled()),
                "autotune": on(os.environ.get("TF_CUDNN_USE_AUTOTUNE", "1") != "0")}

    def _smoothed_cross_entropy(self, classes: int) -> Callable[[Any, Any], Any]:
        """Keras's SparseCategoricalCrossentropy takes no label_smoothing (keras/src/losses/losses.py): its
        CategoricalCrossentropy does, on one-hot labels, (1 − ε)·one-hot + ε/K as torch's."""
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=self.label_smoothing,
                                                    dtype=self._params_dtype)
        return lambda target, output: loss(keras.ops.one_hot(keras.ops.cast(target[:, 0], "int32"), classes,
                                                             dtype=self._params_dtype), output)

    def _weighted_cross_entropy(self) -> Callable[[Any, Any], Any]:
        """Each example weighted by its class's weight, as Keras's class_weight does, and divided by the weights'
        sum (reduction="mean_with_sample_weight", keras/src/losses/loss.py:150-151): torch's weighted mean (Keras's
        default divides by the batch size)."""
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight",
                                                          dtype=self._params_dtype)
        weights = tf.constant(self.class_weights, dtype=self._params_dtype)
        return lambda target, output: loss(target, output,
                                           sample_weight=tf.gather(weights, tf.cast(target[:, 0], tf.int32)))

    def _compiled(self, fn: Callable[..., Any], signature: list[Any] | None) -> Callable[..., Any]:
        """fn under tf.function in compiled mode (each call that traces and optimises a graph with the C++
        chatter filtered); as it is, op by op, in eager mode. With a signature, one trace for every batch size;
        without, one per shape of the arguments."""
        if self.mode == "eager":
            return fn
        function = tf.function(fn, input_signature=signature)
        traced: set[tuple[Any, ...]] = set()

        def call(*args: Any) -> Any:
            key = () if signature is not None else tuple(_shapes(arg) for arg in args)
            if key in traced:
                return function(*args)
            with _native_log_filtered():
                result = function(*args)
            traced.add(key)
            return result

        return call

    def _training_forward(self, X: Any, keeps: list[Any]) -> Any:
        """The model's output in training, each dropout layer given its mask (keeps: in the layers' order)."""
        if not keeps:
            return self._model(X, training=True)
        by_layer, out = dict(zip(self.masked_layers, keeps, strict=True)), X
        for index, layer in enumerate(self._model.layers):
            out = layer(out, by_layer[index]) if index in by_layer else layer(out, training=True)
        return out

    def _loss_and_gradients(self, X: Any, y: Any, keeps: list[Any], scaled: bool = False) -> tuple[Any, list[Any]]:
        variables = self._model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self._loss_fn(y, self._training_forward(X, keeps))
            scaled_loss = self._optimizer.scale_loss(loss) if scaled else loss
        # An embedding's gradient comes as tf.IndexedSlices (the rows its ids took): dense, as every other's
        return loss, [tf.convert_to_tensor(grad) for grad in tape.gradient(scaled_loss, variables)]

    def _train_step_on_rows(self, X: Any, y: Any, keeps: list[Any], rows: Any) -> Any:
        # The batch is gathered inside the step: no slicing op per batch outside the graph.
        return self._train_step(tf.gather(X, rows), tf.gather(y, rows), keeps)

    def _train_step(self, X: Any, y: Any, keeps: list[Any]) -> Any:
        loss, grads = self._loss_and_gradients(X, y, keeps, scaled=self.numerics.scaled)
        self._optimizer.apply(grads, self._model.trainable_variables)
        return loss

    def _penalty(self) -> float:
        # _train_step adds wd·variable to the gradient of every trainable variable. (Keras's L2 regulariser
        # is this sum too, but it rounds its factor to float32 whatever the variables' dtype.)
        squares = tf.add_n([tf.reduce_sum(tf.square(variable)) for variable in self._model.trainable_variables])
        return float(0.5 * self.training.coupled_decay * squares)

    def _get_params(self) -> Params:
        return {name: link.read(link.of(native).numpy()) for name, (native, link) in self._links.items()}

    def _set_params(self, params: Params) -> None:
        for name, (native, link) in self._links.items():
            variable = link.of(native)
            variable.assign(link.written(variable.numpy(), params[name]))

    def _get_state(self) -> Params:
        return {name: link.canonical_array(link.of(native).numpy())
                for name, (native, link) in self._state_links.items()}

    def _set_state(self, state: Params) -> None:
        for name, (native, link) in self._state_links.items():
            link.of(native).assign(link.native_array(state[name]))

    def _native_init(self, seed: int) -> None:
        draws = keras.random.SeedGenerator(seed)  # seeded here, without touching Keras's global seed
        for native, translator in zip(self._model.layers, self._translators, strict=True):
            translator.native_init(native, draws, self._params_dtype)

    def _reset_optimizer(self) -> None:
        # Keras's update steps cast their hyper-parameters with ops.cast(self.beta_2, variable.dtype); for
        # a Python float that makes a float32 tensor first, so a float64 model would see β₂ = 0.99900001287
        # in Adam's bias correction (and μ = 0.899999976 in SGD). np.float64 is a float Keras accepts and
        # casts exactly. The learning rate is a variable of floatx: built under the model's dtype, likewise.
        with _floatx(self._params_dtype):
            self._optimizer = KerasOptimizer(self.training, self._params_dtype, self._model.trainable_variables,
                                             scaled=self.numerics.scaled)
        # A new optimiser has new variables: a new step function, traced for them on its first call.
        # A full batch in loaded order takes the data as they are, without a gather the size of the data set.
        # One trace per batch size, as a plain loop's tf.function makes: a graph whose batch size is unknown is
        # slower (a Keras LSTM's step by 20 %, measured), and the suite times each size's first step apart.
        self._step = self._compiled(self._train_step, None)
        self._step_on_rows = self._compiled(self._train_step_on_rows, None)

    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[list[np.ndarray]]:
        rows = tf.data.Dataset.range(n_rows)
        if shuffle:  # a buffer as long as the data: a uniform shuffle, new each epoch, seeded
            rows = rows.shuffle(n_rows, seed=seed, reshuffle_each_iteration=True)
        batches = rows.batch(batch_size)
        for _ in range(epochs):
            yield [batch.numpy() for batch in batches]

    def _computed_mask(self, mask: Any) -> Any:
        return tf.cast(mask, self.numerics.compute)

    def _tensor(self, array: np.ndarray) -> Any:
        """An input or target in the variables' dtype (bfloat16 throughout, float32 where mixed)."""
        return tf.cast(tf.constant(array), self._params_dtype)

    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, self._y = self._tensor(X), self._tensor(y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._forward(self._tensor(X)).numpy()

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(self._mean_loss(self._tensor(X), self._tensor(y)))

    def _loss_loaded(self) -> float:
        return float(self._mean_loss(self._X, self._y))

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        loss, grads = self._value_and_grad(self._tensor(X), self._tensor(y), list(self._keeps(len(X)).values()))
        found = {name: self._links[name][1].read(grad.numpy())
                 for names, grad in zip(self._gradient_names, grads, strict=True) for name in names}
        return float(loss), found

    # ---- replay hooks (compare.py explain) ----

    def _activations(self, X: np.ndarray) -> list[np.ndarray]:
        found, out, keeps = [], self._tensor(X), self._keeps(len(X))
        for index, layer in enumerate(self._model.layers):
            # the activations of a training step (batch statistics, the step's dropout masks)
            out = layer(out, keeps[index]) if index in keeps else layer(out, training=True)
            found.append(out.numpy())
        return found

    def _optimizer_state(self) -> dict[str, Any]:
        found: dict[str, Any] = {kind: {} for kind in self.training.state_kinds()}
        for name, (native, link) in self._links.items():
            for kind, (variable, scale) in self._optimizer.slots(link.of(native)).items():
                found[kind][name] = link.read(variable.numpy() * scale)
        return found

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        self._optimizer.optimizer.iterations.assign(state["step"])
        for name, (native, link) in self._links.items():
            for kind, (variable, scale) in self._optimizer.slots(link.of(native)).items():
                variable.assign(link.written(variable.numpy(), state[kind][name] / scale))

    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> list[float]:
        losses = []
        for start, stop in bounds:
            keeps = list(self._keeps(stop - start, advance=True).values())
            losses.append(self._step(self._X, self._y, keeps) if order is None and stop - start == self._n_train else
                          self._step_on_rows(self._X, self._y, keeps, tf.constant(
                              np.arange(start, stop) if order is None else order[start:stop], tf.int64)))
            scale = self._optimizer.loss_scale()
            if scale is not None:
                self._scales.append(scale)
        return [float(loss) for loss in losses]
