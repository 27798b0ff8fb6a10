"""A port check's repro bundle: the inputs and both models' weights as .npz (A's own, B holding A's, carried), a copy
of each model's file and, per model, a standalone script that builds it with its factory, loads the weights with its
framework's own machinery, runs the inputs through it and trains the same steps, printing what it computes: what a
user attaches to a bug report (running both shows the difference without backend-compare)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .native import Training

SAVED = {  # the weights of a model, all of them, keyed as its framework's loader below takes them
    "torch": lambda model: {name: value.detach().numpy() for name, value in model.state_dict().items()},
    "tensorflow": lambda model: {f"{index:04d}": np.array(variable) for index, variable in enumerate(model.weights)},
}

LOAD = {
    "torch": """import torch
model.to(getattr(torch, DTYPE))
model.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()})
x = torch.from_numpy(X)""",
    "mxnet": """import os, tempfile
import mxnet as mx
from mxnet import autograd, gluon
model.cast(DTYPE)
path = os.path.join(tempfile.mkdtemp(), "weights.params")
mx.nd.save(path, {name: mx.nd.array(value, dtype=value.dtype) for name, value in weights.items()})
model.load_parameters(path)
x = mx.nd.array(X, dtype=X.dtype)""",
    "jax": """import jax
import jax.numpy as jnp
import optax
from flax import nnx
if DTYPE == "float64":  # as the check cast it: what layers compute in, and cells make their carry in
    for _, module in model.iter_modules():
        for name in ("param_dtype", "dtype"):
            if getattr(module, name, None) is not None:
                setattr(module, name, jnp.float64)
state = nnx.state(model)  # JAX holds float64 with jax_enable_x64, which the script turns on first for it
for key, variable in nnx.to_flat_state(state):
    if ".".join(map(str, key)) in weights:  # every variable but the random keys
        variable.value = jnp.asarray(weights[".".join(map(str, key))], dtype=DTYPE if jnp.issubdtype(
            variable.value.dtype, jnp.floating) else variable.value.dtype)
nnx.update(model, state)
x = jnp.asarray(X)""",
    "tensorflow": """import keras
import tensorflow as tf
for index, variable in enumerate(model.weights):
    variable.assign(weights[f"{index:04d}"])
x = tf.constant(X)""",
}

RUN = {
    "torch": """model.eval()
with torch.no_grad():
    print("output (evaluation mode):", model(x).numpy().ravel()[:8])
if y is not None:
    optimizer = {optimizer_torch}
    loss_fn = {loss_torch}
    target = torch.from_numpy(y)
    model.train()
    for step, (start, stop) in enumerate(BATCHES, start=1):
        optimizer.zero_grad()
        output = model(x[start:stop])
        loss = {loss_call_torch}
        loss.backward()
        optimizer.step()
        print(f"step {{step}}: loss {{loss.item():.9g}}")""",
    "mxnet": """print("output (evaluation mode):", model(x).asnumpy().ravel()[:8])
if y is not None:
    trainer = gluon.Trainer(model.collect_params(), {optimizer_gluon})
    target = mx.nd.array(y, dtype=y.dtype)
    for step, (start, stop) in enumerate(BATCHES, start=1):
        with autograd.record(train_mode=True):
            output = model(x[start:stop])
            loss = {loss_call_gluon}
        loss.backward()
        trainer.step(stop - start, ignore_stale_grad=True)
        print(f"step {{step}}: loss {{float(loss.mean().asscalar()):.9g}}")""",
    "jax": """model.eval()
print("output (evaluation mode):", np.asarray(model(x)).ravel()[:8])
if y is not None:
    optimizer = nnx.Optimizer(model, {optimizer_optax}, wrt=nnx.Param)
    target = jnp.asarray(y)

    def loss_fn(model, inputs, target):
        output = model(inputs)
        return {loss_call_optax}

    @nnx.jit  # one compiled step, as the check ran it
    def train_step(model, optimizer, inputs, target):
        loss, grads = nnx.value_and_grad(loss_fn)(model, inputs, target)
        optimizer.update(model, grads)
        return loss

    model.train()
    for step, (start, stop) in enumerate(BATCHES, start=1):
        loss = train_step(model, optimizer, x[start:stop], target[start:stop])
        print(f"step {{step}}: loss {{float(loss):.9g}}")""",
    "tensorflow": """print("output (evaluation mode):", np.array(model(x, training=False)).ravel()[:8])
if y is not None:
    optimizer = {optimizer_keras}
    loss_fn = {loss_keras}
    target = tf.constant(y)
    for step, (start, stop) in enumerate(BATCHES, start=1):
        with tf.GradientTape() as tape:
            output = model(x[start:stop], training=True)
            loss = {loss_call_keras}
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        print(f"step {{step}}: loss {{float(loss):.9g}}")""",
}


def _optimisers(training: Training) -> dict[str, str]:
    lr, wd, momentum = training.lr, training.weight_decay, training.momentum
    sgd_momentum = momentum if training.optimizer == "momentum" else 0.0
    adam = training.optimizer == "adam"
    decay = f"optax.add_decayed_weights({wd!r}), " if wd else ""
    gluon_options = {"learning_rate": lr, "wd": wd, **({"momentum": sgd_momentum} if sgd_momentum else {})}
    keras_decay = f", weight_decay={wd!r}" if wd else ""
    mse = training.loss == "mse"
    return {
        "optimizer_torch": (f"torch.optim.Adam(model.parameters(), lr={lr!r}, weight_decay={wd!r})" if adam else
                            f"torch.optim.SGD(model.parameters(), lr={lr!r}, momentum={sgd_momentum!r}, "
                            f"weight_decay={wd!r})"),
        "optimizer_gluon": f"{'adam' if adam else 'sgd'!r}, {gluon_options!r}",
        "optimizer_optax": (f"optax.chain({decay}optax.adam({lr!r}))" if adam else
                            f"optax.chain({decay}optax.sgd({lr!r}, momentum={sgd_momentum or None!r}))"),
        "optimizer_keras": (f"keras.optimizers.Adam(learning_rate={lr!r}{keras_decay})" if adam else
                            f"keras.optimizers.SGD(learning_rate={lr!r}, momentum={sgd_momentum!r}{keras_decay})"),
        "loss_torch": "torch.nn.MSELoss()" if mse else "torch.nn.CrossEntropyLoss()",
        "loss_call_torch": ("loss_fn(output, target[start:stop].reshape(output.shape))" if mse else
                            "loss_fn((output.permute(0, 2, 3, 1) if output.ndim == 4 else output).reshape(-1, "
                            "output.shape[1] if output.ndim == 4 else output.shape[-1]), "
                            "target[start:stop].reshape(-1).long())"),
        "loss_call_gluon": ("2 * gluon.loss.L2Loss()(output, target[start:stop].reshape(output.shape))" if mse else
                            "gluon.loss.SoftmaxCrossEntropyLoss()((output.transpose(axes=(0, 2, 3, 1)) if output.ndim "
                            "== 4 else output).reshape(-1, output.shape[1] if output.ndim == 4 else output.shape[-1]), "
                            "target[start:stop].reshape(-1)).reshape(stop - start, -1).mean(axis=1)"),
        "loss_call_optax": ("optax.losses.squared_error(output, target.reshape(output.shape)).mean()" if mse else
                            "optax.losses.softmax_cross_entropy_with_integer_labels(output.reshape(-1, "
                            "output.shape[-1]), target.reshape(-1).astype(jnp.int32)).mean()"),
        "loss_keras": ("keras.losses.MeanSquaredError()" if mse else
                       "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
        "loss_call_keras": ("loss_fn(tf.reshape(target[start:stop], output.shape), output)" if mse else
                            "loss_fn(target[start:stop], output)"),
    }


def saved_weights(framework: str, model: Any) -> dict[str, np.ndarray]:
    """Every weight of `model` as its framework's own loader takes it back (the script's LOAD)."""
    if framework == "mxnet":
        import mxnet as mx

        with tempfile.TemporaryDirectory() as folder:  # save_parameters: Gluon's own names, by position
            path = str(Path(folder) / "weights.params")
            model.save_parameters(path)
            return {name: value.asnumpy() for name, value in mx.nd.load(path).items()}
    if framework == "jax":
        import jax
        from flax import nnx

        return {".".join(map(str, key)): np.asarray(variable.value)
                for key, variable in nnx.to_flat_state(nnx.state(model))  # its random keys are no weights
                if not jax.dtypes.issubdtype(variable.value.dtype, jax.dtypes.prng_key)}
    return SAVED[framework](model)


def script(side: str, framework: str, factory: str, training: Training, batches: list[tuple[int, int]],
           dtype: str, channels_last: bool, folder: str) -> str:
    module = f"model_{side.lower()}"
    body = RUN[framework].format(**_optimisers(training))
    first = 'import jax\n\njax.config.update("jax_enable_x64", True)\n' if framework == "jax" and dtype == "float64" \
        else ""
    layout = ("X = np.ascontiguousarray(X.transpose(0, 2, 3, 1)) if X.ndim == 4 else X  # it takes images channels "
              "last\n" if channels_last else "")
    targets = "y = y.astype(DTYPE) if y is not None else None\n" if training.loss == "mse" else ""
    if training.loss == "mse" and channels_last:
        targets += "y = np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if y is not None and y.ndim == 4 else y\n"
    return (f'"""Model {side} of the port check, standalone: {module}.py\'s {factory}() with the checked weights '
            f"(weights_{side.lower()}.npz), run on inputs.npz and trained {len(batches)} step(s) as the check did. "
            "Run it beside the other model's script and compare what they print. Dropout runs as the model has it "
            'here; the check held it at rate 0."""\n\n'
            f"{first}import sys\n\nimport numpy as np\n\n"
            f"sys.path.append({folder!r})  # the model file's own folder, for a module it imports from beside it\n"
            f"{MXNET_NUMPY if framework == 'mxnet' else ''}"
            f"from {module} import {factory}\n\n"
            f"BATCHES = {batches!r}  # each step's rows\n"
            f"DTYPE = {dtype!r}\n"
            f"model = {factory}()\n"
            f'weights = dict(np.load("weights_{side.lower()}.npz"))\n'
            'data = np.load("inputs.npz")\n'
            'X, y = data["X"], (data["y"] if "y" in data.files else None)\n'
            f"{layout}{targets}{LOAD[framework]}\n{body}\n")


def fill_bundle(folder: Path, models: dict[str, tuple[str, dict[str, np.ndarray], dict[str, Any]]], X: np.ndarray,
                y: np.ndarray | None, training: Training, dtype: str) -> None:
    """Write the bundle into `folder`: models maps A and B to (FILE.py:FACTORY, its weights as saved_weights gives
    them, the report's description of it: its framework and layout)."""
    from .native import batches

    folder.mkdir()
    X = X.astype(dtype) if X.dtype.kind == "f" else X
    np.savez(folder / "inputs.npz", X=X, **({"y": y} if y is not None else {}))
    steps = batches(len(X), training) if y is not None else []
    for side, (given, weights, described) in models.items():
        path, _, factory = given.rpartition(":")
        shutil.copyfile(path, folder / f"model_{side.lower()}.py")
        framework = FRAMEWORKS[described["framework"]]
        np.savez(folder / f"weights_{side.lower()}.npz", **weights)
        (folder / f"repro_{side.lower()}.py").write_text(script(side, framework, factory, training, steps, dtype,
                                                                described["channels_last"],
                                                                str(Path(path).resolve().parent)))


MXNET_NUMPY = ('if "bool" not in np.__dict__:  # MXNet 1.9.1 uses the alias NumPy 1.24 removed\n'
               "    np.bool = bool\n\n")
FRAMEWORKS = {"PyTorch": "torch", "MXNet Gluon": "mxnet", "Flax NNX": "jax", "Keras": "tensorflow"}
