"""A repro bundle per finding of `compare.py explain --out DIR`: the step's batch, parameters and optimiser
state in step.npz, and per framework a short standalone script (plain framework code, no import of this
package) that replays that one step and prints its loss, gradients and updates at full precision."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import RowName
from ..backends.base import ADAM_BETAS, ADAM_EPS
from ..layers import Linear
from ..tasks import Problem
from .explain import Finding, finding_lines
from .saved import existing_ancestor, prove_writable, write_folder_whole

BUNDLE_MARKER = "explain.txt"  # what makes a folder a previous bundle, replaced whole

PROLOGUE = '''"""Replays one optimiser step of a backend-compare explain finding with __FRAMEWORK__ alone:
prints the loss, every gradient and every update (the change the step makes) at full precision."""
from pathlib import Path

import numpy as np

LAYERS = __LAYERS__  # ("linear", in, out, bias) or (activation,), as nn.Sequential numbers them
OPTIONS = __OPTIONS__
bundle = np.load(Path(__file__).with_name("step.npz"))
DTYPE = OPTIONS["dtype"]
X, y = bundle["X"].astype(DTYPE), bundle["y"].astype(DTYPE)
params = {k[7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith("params/")}  # (out, in) weights
STEP = int(bundle["state/step"])  # optimiser steps already taken
state = {kind: {k[len(kind) + 7:]: bundle[k].astype(DTYPE) for k in bundle.files if k.startswith(f"state/{kind}/")}
         for kind in ("velocity", "m", "v")}  # torch's momentum buffer; Adam's biased moments
BETA1, BETA2, EPS = __ADAM__


def numbers(array):
    return "[" + ", ".join(f"{float(value):.17g}" for value in np.asarray(array).ravel()) + "]"


def show(loss, grads, updates):
    print(f"loss {float(loss):.17g}")
    for name in params:
        print(f"gradient {name} {numbers(grads[name])}")
    for name in params:
        print(f"update {name} {numbers(updates[name])}")
'''

SCRIPTS = {
    "numpy": '''
ACT = {"tanh": (np.tanh, lambda a, z: 1.0 - z * z), "relu": (lambda a: np.maximum(a, 0), lambda a, z: (a > 0) * 1.0),
       "sigmoid": (lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a, z: z * (1.0 - z))}
acts = [X]
for i, layer in enumerate(LAYERS):
    a = acts[-1]
    if layer[0] == "linear":
        z = a @ params[f"{i}.weight"].T + (params[f"{i}.bias"] if layer[3] else 0)
    else:
        z = ACT[layer[0]][0](a)
    acts.append(z)
diff = acts[-1] - y
if OPTIONS["loss"] == "cross-entropy":  # y holds class indices; stable log-softmax, gradient softmax − one-hot
    z = acts[-1] - acts[-1].max(axis=1, keepdims=True)
    rows, labels = np.arange(len(z)), y[:, 0].astype(int)
    loss = np.mean(np.log(np.exp(z).sum(axis=1)) - z[rows, labels])
    g = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    g[rows, labels] -= 1.0
    g /= len(z)
elif OPTIONS["loss"] == "huber":
    d = OPTIONS["huber_delta"]
    loss = np.mean(np.where(np.abs(diff) <= d, 0.5 * diff * diff, d * (np.abs(diff) - 0.5 * d)))
    g = np.where(np.abs(diff) <= d, diff, d * np.sign(diff)) / diff.size
else:
    scale = 0.5 if OPTIONS["loss"] == "half-mse" else 1.0
    loss, g = scale * np.mean(diff * diff), diff * (2.0 * scale / diff.size)
grads = {}
for i in reversed(range(len(LAYERS))):
    layer, a = LAYERS[i], acts[i]
    if layer[0] == "linear":
        grads[f"{i}.weight"] = g.T @ a
        if layer[3]:
            grads[f"{i}.bias"] = g.sum(axis=0)
        g = g @ params[f"{i}.weight"]
    else:
        g = g * ACT[layer[0]][1](a, acts[i + 1])
updates, t, lr, wd = {}, STEP + 1, OPTIONS["lr"], OPTIONS["weight_decay"]
for name, p in params.items():
    gw = grads[name] + wd * p
    if OPTIONS["optimizer"] == "adam":
        m = BETA1 * state["m"][name] + (1 - BETA1) * gw
        v = BETA2 * state["v"][name] + (1 - BETA2) * gw * gw
        updates[name] = -lr * (m / (1 - BETA1**t)) / (np.sqrt(v / (1 - BETA2**t)) + EPS)
    elif OPTIONS["momentum"]:
        updates[name] = -lr * (OPTIONS["momentum"] * state["velocity"][name] + gw)
    else:
        updates[name] = -lr * gw
show(loss, grads, updates)
''',
    "torch": '''
import torch
from torch import nn

ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
model = nn.Sequential(*[nn.Linear(l[1], l[2], bias=l[3]) if l[0] == "linear" else ACT[l[0]]() for l in LAYERS])
model = model.to(getattr(torch, DTYPE))
model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
mse = nn.MSELoss()
loss_fn = {"mse": mse, "half-mse": lambda out, t: 0.5 * mse(out, t),
           "huber": nn.HuberLoss(delta=OPTIONS["huber_delta"]),
           "cross-entropy": lambda out, t: nn.CrossEntropyLoss()(out, t.reshape(-1).long())}[OPTIONS["loss"]]
named = dict(model.named_parameters())
if OPTIONS["optimizer"] == "adam":
    opt = torch.optim.Adam(model.parameters(), lr=OPTIONS["lr"], betas=(BETA1, BETA2), eps=EPS,
                           weight_decay=OPTIONS["weight_decay"])
    for name, p in named.items():
        opt.state[p] = {"step": torch.tensor(float(STEP)), "exp_avg": torch.from_numpy(state["m"][name]),
                        "exp_avg_sq": torch.from_numpy(state["v"][name])}
else:
    opt = torch.optim.SGD(model.parameters(), lr=OPTIONS["lr"], momentum=OPTIONS["momentum"] or 0.0,
                          weight_decay=OPTIONS["weight_decay"])
    for name, p in named.items():
        if OPTIONS["momentum"]:
            opt.state[p] = {"momentum_buffer": torch.from_numpy(state["velocity"][name])}
loss = loss_fn(model(torch.from_numpy(X)), torch.from_numpy(y))
loss.backward()
grads = {name: p.grad.numpy().copy() for name, p in named.items()}
opt.step()
show(loss.item(), grads, {name: p.detach().numpy() - params[name] for name, p in named.items()})
''',
    "mxnet": '''
import math
if "bool" not in np.__dict__:
    np.bool = bool  # MXNet 1.9.1 still uses the alias NumPy 1.24 removed
import mxnet as mx
from mxnet import autograd, gluon, nd

net = gluon.nn.HybridSequential()
for l in LAYERS:
    net.add(gluon.nn.Dense(l[2], in_units=l[1], use_bias=l[3], dtype=DTYPE) if l[0] == "linear"
            else gluon.nn.Activation(l[0]))
net.initialize(ctx=mx.cpu())
net.hybridize(static_alloc=True)
named = {}
for name in params:
    index, kind = name.split(".")
    named[name] = getattr(net[int(index)], kind)
    named[name].set_data(nd.array(params[name], dtype=DTYPE))
d = OPTIONS["huber_delta"]
loss_fn = {"mse": gluon.loss.L2Loss(weight=2.0), "half-mse": gluon.loss.L2Loss(),
           "huber": gluon.loss.HuberLoss(rho=d, weight=d),
           "cross-entropy": gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=True)}[OPTIONS["loss"]]
adam = OPTIONS["optimizer"] == "adam"
settings = ({"beta1": BETA1, "beta2": BETA2, "epsilon": EPS} if adam else {"momentum": OPTIONS["momentum"] or 0.0})
trainer = gluon.Trainer(net.collect_params(), "adam" if adam else "sgd",
                        {"learning_rate": OPTIONS["lr"], "wd": OPTIONS["weight_decay"], **settings}, kvstore=None)
updater, optimizer = trainer._updaters[0], trainer._optimizer
slot = {id(p): i for i, p in enumerate(trainer._params)}
lr32 = float(np.float32(OPTIONS["lr"]))
for name, param in named.items():  # Gluon's SGD keeps mom = -lr * torch's buffer
    i = slot[id(param)]
    if adam:
        updater.states[i] = (nd.array(state["m"][name], dtype=DTYPE), nd.array(state["v"][name], dtype=DTYPE))
    elif OPTIONS["momentum"]:
        updater.states[i] = nd.array(-state["velocity"][name] * lr32, dtype=DTYPE)
    else:
        updater.states[i] = optimizer.create_state_multi_precision(i, param.data())
    updater.states_synced[i] = True
    optimizer._index_update_count[i] = STEP
optimizer.num_update = STEP
if adam:  # MXNet adds ε to √v: ε·√(1−β₂ᵗ) makes it the paper's ε on √v̂
    optimizer.epsilon = EPS * math.sqrt(1 - BETA2 ** (STEP + 1))
with autograd.record():
    loss = loss_fn(net(nd.array(X, dtype=DTYPE)), nd.array(y, dtype=DTYPE))
loss.backward()
grads = {name: (p.grad() / len(X)).asnumpy() for name, p in named.items()}
trainer.step(len(X))
show(loss.mean().asscalar(), grads, {name: p.data().asnumpy() - params[name] for name, p in named.items()})
''',
    "jax": '''
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import optax
from flax import nnx

ACT = {"tanh": jnp.tanh, "relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid}
rngs = nnx.Rngs(0)
model = nnx.Sequential(*[nnx.Linear(l[1], l[2], use_bias=l[3], dtype=DTYPE, param_dtype=DTYPE, rngs=rngs)
                         if l[0] == "linear" else ACT[l[0]] for l in LAYERS])
for i, layer in enumerate(model.layers):
    if isinstance(layer, nnx.Linear):
        layer.kernel.value = jnp.asarray(params[f"{i}.weight"].T)  # Flax kernels are (in, out)
        if layer.bias is not None:
            layer.bias.value = jnp.asarray(params[f"{i}.bias"])
graph, weights = nnx.split(model, nnx.Param)
per_element = {"mse": optax.losses.squared_error, "half-mse": lambda o, t: 0.5 * optax.losses.squared_error(o, t),
               "huber": lambda o, t: optax.losses.huber_loss(o, t, delta=OPTIONS["huber_delta"]),
               "cross-entropy": lambda o, t: optax.losses.softmax_cross_entropy_with_integer_labels(
                   o, t[:, 0].astype(jnp.int32))}[OPTIONS["loss"]]


def mean_loss(w, X, y):
    return jnp.mean(per_element(nnx.merge(graph, w)(X), y))


decay = [optax.add_decayed_weights(OPTIONS["weight_decay"])] if OPTIONS["weight_decay"] else []
rule = (optax.adam(OPTIONS["lr"], b1=BETA1, b2=BETA2, eps=EPS) if OPTIONS["optimizer"] == "adam"
        else optax.sgd(OPTIONS["lr"], momentum=OPTIONS["momentum"] or None))
tx = optax.chain(*decay, rule)
KINDS = {"trace": "velocity", "mu": "m", "nu": "v"}


def restored(path, leaf):  # the saved state into Optax's: .count, and .trace/.mu/.nu per parameter
    key = jax.tree_util.keystr(path)
    if key.endswith(".count"):
        return jnp.asarray(STEP, dtype=jnp.asarray(leaf).dtype)
    for kind, canonical in KINDS.items():
        if f".{kind}[" in key:
            index, part = key.split("['layers'][")[1].split("]")[0], "kernel" if "kernel" in key else "bias"
            value = state[canonical][f"{index}.{'weight' if part == 'kernel' else 'bias'}"]
            return jnp.asarray(value.T if part == "kernel" else value)
    return leaf


opt_state = jax.tree_util.tree_map_with_path(restored, tx.init(weights))
loss, grads = jax.value_and_grad(mean_loss)(weights, jnp.asarray(X), jnp.asarray(y))
updates, _ = tx.update(grads, opt_state, weights)
flat = {}
for (path, g), (_, u) in zip(nnx.to_flat_state(grads), nnx.to_flat_state(updates)):
    index, part = path[-2], path[-1]
    g, u = np.asarray(getattr(g, "value", g)), np.asarray(getattr(u, "value", u))
    flat[f"{index}.{'weight' if part == 'kernel' else 'bias'}"] = (g.T, u.T) if part == "kernel" else (g, u)
show(loss, {k: v[0] for k, v in flat.items()}, {k: v[1] for k, v in flat.items()})
''',
    "tensorflow": '''
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
import keras
import tensorflow as tf

keras.config.set_floatx(DTYPE)  # Keras's learning-rate variable takes floatx
model = keras.Sequential([keras.Input((LAYERS[0][1],), dtype=DTYPE),
                          *[keras.layers.Dense(l[2], use_bias=l[3], dtype=DTYPE) if l[0] == "linear"
                            else keras.layers.Activation(l[0], dtype=DTYPE) for l in LAYERS]])
variables = {}
for i, layer in enumerate(model.layers):
    if isinstance(layer, keras.layers.Dense):
        layer.kernel.assign(params[f"{i}.weight"].T)  # Keras kernels are (in, out)
        variables[f"{i}.weight"] = (layer.kernel, True)
        if layer.use_bias:
            layer.bias.assign(params[f"{i}.bias"])
            variables[f"{i}.bias"] = (layer.bias, False)
mse = keras.losses.MeanSquaredError(dtype=DTYPE)
loss_fn = {"mse": mse, "half-mse": lambda t, o: 0.5 * mse(t, o),
           "huber": keras.losses.Huber(delta=OPTIONS["huber_delta"], dtype=DTYPE),
           "cross-entropy": keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=DTYPE)}[OPTIONS["loss"]]
adam = OPTIONS["optimizer"] == "adam"
# Keras casts Python-float hyper-parameters through float32: np.float64 keeps them exact
opt = (keras.optimizers.Adam(OPTIONS["lr"], beta_1=np.float64(BETA1), beta_2=np.float64(BETA2)) if adam
       else keras.optimizers.SGD(OPTIONS["lr"], momentum=np.float64(OPTIONS["momentum"] or 0.0)))
trainable = model.trainable_variables
opt.build(trainable)
opt.iterations.assign(STEP)
lr = float(opt.learning_rate.numpy())
for name, (variable, kernel) in variables.items():
    slot = opt._get_variable_index(variable)
    targets = ({"m": (opt._momentums[slot], 1.0), "v": (opt._velocities[slot], 1.0)} if adam else
               {"velocity": (opt.momentums[slot], -lr)} if OPTIONS["momentum"] else {})  # Keras: m = -lr * buffer
    for kind, (target, scale) in targets.items():
        value = state[kind][name] * scale
        target.assign(value.T if kernel else value)
if adam:  # Keras adds ε to √v: ε·√(1−β₂ᵗ) makes it the paper's ε on √v̂
    opt.epsilon = tf.Variable(EPS * np.sqrt(1 - BETA2 ** (STEP + 1)), dtype=DTYPE)
with tf.GradientTape() as tape:
    loss = loss_fn(tf.constant(y), model(tf.constant(X), training=True))
grads = tape.gradient(loss, trainable)
wd = OPTIONS["weight_decay"]  # Keras's weight_decay is decoupled; torch's L2 term goes into the gradient
opt.apply_gradients(zip([g + wd * v for g, v in zip(grads, trainable)] if wd else grads, trainable))
by_variable = {id(v): g for v, g in zip(trainable, grads)}
grad_out = {name: by_variable[id(v)].numpy().T if kernel else by_variable[id(v)].numpy()
            for name, (v, kernel) in variables.items()}
show(float(loss), grad_out, {name: (v.numpy().T if kernel else v.numpy()) - params[name]
                             for name, (v, kernel) in variables.items()})
''',
}


def layers_literal(problem: Problem) -> list[tuple[Any, ...]]:
    return [("linear", layer.in_features, layer.out_features, layer.bias) if isinstance(layer, Linear)
            else (layer.label,) for layer in problem.spec]


def script(framework: str, problem: Problem, options: dict[str, Any]) -> str:
    kept = {key: options[key] for key in ("dtype", "optimizer", "lr", "momentum", "weight_decay", "loss",
                                         "huber_delta")}
    return (PROLOGUE.replace("__FRAMEWORK__", framework).replace("__LAYERS__", repr(layers_literal(problem)))
            .replace("__OPTIONS__", repr(kept)).replace("__ADAM__", repr((*ADAM_BETAS, ADAM_EPS)))
            + SCRIPTS[framework])


def _folder_name(finding: Finding) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{finding.backend_a}-vs-{finding.backend_b}")


def bundle_arrays(problem: Problem, finding: Finding) -> dict[str, np.ndarray]:
    replay = finding.replay
    rows = replay["batch"]
    arrays = {"X": problem.X_train[rows], "y": problem.y_train[rows], "state/step": np.array(replay["state"]["step"])}
    arrays.update({f"params/{name}": value for name, value in replay["params"].items()})
    for kind in ("velocity", "m", "v"):
        arrays.update({f"state/{kind}/{name}": value for name, value in replay["state"].get(kind, {}).items()})
    return arrays


def check_bundle_folder(given: str) -> Path:
    """A new folder, an empty one, or a previous bundle (replaced whole); refused otherwise, before running."""
    out = Path(given)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ValueError(f"--out {given!r} exists and is not a folder; give a new folder or a previous bundle's")
        entries = sorted(entry.name for entry in out.iterdir())
        if entries and BUNDLE_MARKER not in entries:
            raise ValueError(f"--out {given!r} holds files that are not an explain bundle ({', '.join(entries[:3])}"
                             f"{', …' if len(entries) > 3 else ''}); give a new folder, an empty one or a previous "
                             "bundle's")
    prove_writable(existing_ancestor(out.parent), "--out", given)
    return out


HTML = "report.html"


def write_bundle(out: Path, problem: Problem, options: dict[str, Any], findings: list[Finding], text: str,
                 page: str | None) -> None:
    """Every differing pair's folder (step.npz, finding.txt and one script per framework), the report as
    text and as report.html, written whole as a run folder is."""
    def fill(staging: Path) -> None:
        (staging / BUNDLE_MARKER).write_text(text)
        if page is not None:  # None: it could not be made (and the caller says so)
            (staging / HTML).write_text(page)
        for finding in findings:
            if finding.agree or not finding.replay:
                continue
            folder = staging / _folder_name(finding)
            folder.mkdir()
            np.savez(folder / "step.npz", **bundle_arrays(problem, finding))
            frameworks = [name for name in dict.fromkeys(RowName.parse(row).backend for row in
                                                         (finding.backend_a, finding.backend_b)) if name in SCRIPTS]
            for framework in frameworks:  # replay_numpy.py: a numpy.py would shadow NumPy itself
                (folder / f"replay_{framework}.py").write_text(script(framework, problem, options))
            (folder / "finding.txt").write_text("\n".join(finding_lines(finding)) + "\n\nrun: " + " ; ".join(
                f"python replay_{framework}.py" for framework in frameworks) + "\n")

    write_folder_whole(out, fill, lambda folder: (folder / BUNDLE_MARKER).exists(), "an explain bundle")
