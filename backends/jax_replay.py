"""The standalone replay script of a jax step (compare.py explain --out): Flax NNX layers, an Optax loss and
optimiser, no import of this package. comparison/repro.py puts its prologue (the bundle's arrays, LAYERS, OPTIONS
and show) before it; the jax backend's own code is the model it follows."""

SCRIPT = r'''
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
'''
