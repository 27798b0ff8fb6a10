"""JAX backend: Flax NNX layers, Optax optimisers and losses, jax.value_and_grad, the step under jax.jit.

Importing this module turns on `jax_enable_x64` (process-wide in JAX): float64 models need it, and
float32 ones keep float32 because every array here has an explicit dtype.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

from ..layers import Build, Link, built
from ..optimizers.training import LOSS_SCALE
from .base import Backend, Params
from .batches import split_batches
from .numerics import on
from .precision import NUMERICS

try:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jmp
    import optax
    from flax import nnx
except ImportError as err:
    raise ImportError(f"the jax backend needs JAX, Flax and Optax ({err}); install it with: "
                      "pip install jax==0.7.1 flax==0.12.0 optax==0.2.8 jmp==0.0.4") from err
from ..optimizers.jax_optimizer import STATE_FIELDS, transformation

_DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"  # read when JAX starts its GPU backend
# Optax's state by path: a field (jax_optimizer.STATE_FIELDS: .trace, .mu, .nu, …) holds one array per parameter,
# under the model's ['layers'][index][attribute] (['inner'][attribute] inside a wrapper).
_STATE_PATH = re.compile(r"\.(\w+)\['layers'\]\[(\d+)\]((?:\['\w+'\])+)")


def _training_forward(model: Any, X: Any, keeps: dict[int, Any]) -> Any:
    """The model's output in training, each dropout module given its mask (by position)."""
    if not keeps:
        return model(X)
    out = X
    for index, layer in enumerate(model.layers):
        out = layer(out, keeps[index]) if index in keeps else layer(out)
    return out


class JaxBackend(Backend):
    name = "jax"
    framework = "jax"  # the key of its translators in each layer module
    replay = True
    native_init_description = "nnx.Linear defaults: lecun_normal kernels, zero biases, from nnx.Rngs(seed)"
    modes = ("eager", "compiled")
    usual_mode = "compiled"
    keeps_state = True  # nnx.BatchStat variables, threaded through every step beside the parameters
    # Flax's own policy: each layer's dtype (what it computes in) and param_dtype (what it keeps), as the Flax NNX
    # docs build them; mixed: the output cast to float32 for the loss, and float16's loss scaled by jmp, whose
    # policy (jmp.get_policy("params=float32,compute=bfloat16,output=float32")) this is
    runs = NUMERICS

    def _build(self) -> None:
        if self.deterministic and self.device == "cuda" and _DETERMINISTIC_FLAG not in os.environ.get("XLA_FLAGS", ""):
            raise ValueError(f"deterministic JAX on a GPU needs XLA_FLAGS={_DETERMINISTIC_FLAG} before JAX starts "
                             "(compare.py sets it for its workers)")
        # JAX puts arrays on its first platform (a GPU where it has one) unless told; process-wide, so said each time
        jax.config.update("jax_default_device", jax.devices("gpu" if self.device == "cuda" else "cpu")[0])
        self._jdtype = jnp.dtype(self.numerics.params)
        self._translators = [self.translator(layer) for layer in self.spec]
        # (layer index, the attribute holding it) → the canonical name and the layout it is held in
        self._links: dict[tuple[int, str], tuple[str, Link]] = {
            (index, link.native): (f"{index}.{name}", link)
            for index, (translator, layer) in enumerate(zip(self._translators, self.spec, strict=True))
            for name, link in translator.links_for(layer).items() if name in layer.params()}
        # canonical state name → (layer index, where it lives)
        self._state_links = {f"{index}.{name}": (index, link)
                             for index, (translator, layer) in enumerate(zip(self._translators, self.spec, strict=True))
                             for name, link in translator.state_links_for(layer).items() if name in layer.state()}
        self._seed_model(0)
        per_element = {
            "mse": lambda output, target: optax.losses.squared_error(output, target),
            "half-mse": lambda output, target: 0.5 * optax.losses.squared_error(output, target),
            "huber": lambda output, target: optax.losses.huber_loss(output, target, delta=self.huber_delta),
            # optax has no L1 loss: jnp.abs, whose gradient at exactly 0 is +1 where the others' is 0
            # (jax/_src/lax/lax.py, _abs_jvp_rule: select(x >= 0, g, -g))
            "l1": lambda output, target: jnp.abs(output - target),
            "bce-with-logits": lambda output, target: optax.losses.sigmoid_binary_cross_entropy(output, target),
            # Per example, from integer labels: the (n, 1) class indices become int32 inside the traced step.
            "cross-entropy": (lambda output, target: optax.losses.softmax_cross_entropy_with_integer_labels(
                output, target[:, 0].astype(jnp.int32))) if not self.label_smoothing else (
                lambda output, target: optax.losses.softmax_cross_entropy(output, optax.smooth_labels(
                    jax.nn.one_hot(target[:, 0].astype(jnp.int32), output.shape[-1], dtype=output.dtype),
                    self.label_smoothing))),
        }[self.loss_name]

        weights = None if self.class_weights is None else jnp.asarray(self.class_weights, dtype=self._jdtype)

        def mean(values: Any, y: Any) -> Any:
            if weights is None:
                return jnp.mean(values)
            # optax has no weighted reduction: torch's weighted mean, Σ w[yₙ]·lₙ / Σ w[yₙ]
            weight = weights[y[:, 0].astype(jnp.int32)]
            return jnp.sum(weight * values) / jnp.sum(weight)

        def output(values: Any) -> Any:  # mixed: the loss in float32, as jmp's output=float32
            return values.astype(jnp.float32) if self.numerics.mixed else values

        def mean_loss(params: Any, stats: Any, X: Any, y: Any) -> Any:  # evaluation: running statistics
            return mean(per_element(output(nnx.merge(self._eval_graph, params, stats)(X)), y), y)

        def training_loss(params: Any, stats: Any, X: Any, y: Any, keeps: dict[int, Any],
                          scaler: Any) -> tuple[Any, Any]:
            # Training mode: batch statistics, and the running ones the layers updated (the auxiliary output).
            model = nnx.merge(self._graph, params, stats, copy=True)  # variables of this trace: mutable here
            loss = mean(per_element(output(_training_forward(model, X, keeps)), y), y)
            rest: Any = nnx.split(model, nnx.Param, ...)
            return scaler.scale(loss), (loss, rest[2])

        self._mean_loss = self._compiled(mean_loss)
        self._value_and_grad = self._compiled(jax.value_and_grad(training_loss, has_aux=True))
        self._forward = self._compiled(lambda params, stats, X: nnx.merge(self._eval_graph, params, stats)(X))
        self._tx = tx = transformation(self.training, self._params)  # clip, L2 as torch applies it, the rule
        value_and_grad = self._value_and_grad

        def step(params: Any, stats: Any, opt_state: Any, scaler: Any, X: Any, y: Any,
                 keeps: dict[int, Any]) -> tuple[Any, Any, Any, Any, Any]:
            (_, (loss, stats)), grads = value_and_grad(params, stats, X, y, keeps, scaler)
            grads = scaler.unscale(grads)
            updates, new_state = tx.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if not self.numerics.scaled:
                return new_params, stats, new_state, scaler, loss
            finite = jmp.all_finite(grads)  # a step whose gradient overflowed is skipped, as torch's GradScaler does
            return (jmp.select_tree(finite, new_params, params), stats, jmp.select_tree(finite, new_state, opt_state),
                    scaler.adjust(finite), loss)

        def step_on_rows(params: Any, stats: Any, opt_state: Any, scaler: Any, X: Any, y: Any, rows: Any,
                         keeps: dict[int, Any]) -> tuple[Any, Any, Any, Any, Any]:
            # The batch is gathered inside the step: one trace per batch size, however the rows are chosen.
            return step(params, stats, opt_state, scaler, jnp.take(X, rows, axis=0), jnp.take(y, rows, axis=0),
                        keeps)

        # jit: each traced once per batch shape, for the model's whole life; a full batch in loaded order
        # takes the data as they are, without a gather the size of the data set.
        self._step, self._step_on_rows = self._compiled(step), self._compiled(step_on_rows)

    def math_modes(self) -> dict[str, str]:
        # jax_default_matmul_precision None: XLA's DEFAULT, TF32 for float32 dots and convolutions on a recent
        # NVIDIA GPU (jax/_src/config.py, default_matmul_precision), exact float32 on the CPU
        precision = getattr(jax.config, "jax_default_matmul_precision", None)
        exact = precision in ("highest", "float32", "HIGHEST")
        tf32 = on(not exact and self.device == "cuda")
        flags = os.environ.get("XLA_FLAGS", "")  # XLA's CPU kernels are deterministic, and autotune nothing
        return {"device": self.device, "TF32 matmul": tf32, "TF32 convolution": tf32,
                "deterministic": on(self.device == "cpu" or _DETERMINISTIC_FLAG in flags),
                "autotune": "-" if self.device == "cpu" else on("--xla_gpu_autotune_level=0" not in flags)}

    def _compiled(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """fn under jax.jit in compiled mode; op by op, every inner jit disabled too, in eager mode."""
        if self.mode == "compiled":
            return jax.jit(fn)

        def op_by_op(*args: Any) -> Any:
            with jax.disable_jit():
                return fn(*args)

        return op_by_op

    def _seed_model(self, seed: int) -> None:
        """A new nnx.Sequential drawn from nnx.Rngs(seed); its parameters become the ones trained. Two graphs
        of it: training (batch statistics) and evaluation (running statistics: `Module.eval()`)."""
        build = Build(self.numerics.compute, rngs=nnx.Rngs(seed), param_dtype=self.numerics.params)
        self._model = nnx.Sequential(*built(self._translators, self.spec, build))
        self._model.eval()
        self._eval_graph = nnx.split(self._model, nnx.Param, ...)[0]
        self._model.train()
        self._split()

    def _split(self) -> None:
        """The training graph, the parameters and the rest (running statistics) from the model as it is."""
        split: Any = nnx.split(self._model, nnx.Param, ...)
        self._graph, self._params, self._stats = split

    def _variables(self) -> Iterator[tuple[str, Link, Any]]:
        """Each canonical parameter's name, layout and nnx variable, the model brought up to date first."""
        nnx.update(self._model, self._params, self._stats)
        for (index, _), (name, link) in self._links.items():
            yield name, link, link.of(self._model.layers[index])

    def _penalty(self) -> float:
        # optax.add_decayed_weights adds wd·p to every leaf of the nnx.Param state the optimiser updates
        return float(0.5 * self.training.coupled_decay * optax.tree_utils.tree_norm(self._params, squared=True))

    def _get_params(self) -> Params:
        return {name: link.canonical_array(np.asarray(variable.value)) for name, link, variable in self._variables()}

    def _set_params(self, params: Params) -> None:
        for name, link, variable in self._variables():
            variable.value = jnp.asarray(link.native_array(params[name]), dtype=self._jdtype)
        self._split()

    def _get_state(self) -> Params:
        nnx.update(self._model, self._params, self._stats)
        return {name: link.canonical_array(np.asarray(link.of(self._model.layers[index]).value))
                for name, (index, link) in self._state_links.items()}

    def _set_state(self, state: Params) -> None:
        nnx.update(self._model, self._params, self._stats)
        for name, (index, link) in self._state_links.items():
            # Flax makes BatchNorm's statistics float32 and computes them in at least float32 (nnx/nn/normalization.py:
            # 95, 283-284): the model's dtype where it is wider (float64), float32 below it (bfloat16, float16)
            link.of(self._model.layers[index]).value = jnp.asarray(link.native_array(state[name]),
                                                                    dtype=jnp.promote_types(self._jdtype, jnp.float32))
        self._split()

    def _native_init(self, seed: int) -> None:
        self._seed_model(seed)

    def _reset_optimizer(self) -> None:
        self._opt_state = self._tx.init(self._params)
        self._scaler = jmp.DynamicLossScale(jnp.float32(LOSS_SCALE["initial"]), period=int(LOSS_SCALE["interval"]),
                                            factor=int(LOSS_SCALE["growth"])) if self.numerics.scaled else \
            jmp.NoOpLossScale()

    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[list[np.ndarray]]:
        key = jax.random.PRNGKey(seed)
        for _ in range(epochs):
            key, epoch_key = jax.random.split(key)
            order = np.asarray(jax.random.permutation(epoch_key, n_rows)) if shuffle else np.arange(n_rows)
            yield split_batches(order, batch_size)

    def _computed_mask(self, mask: Any) -> Any:
        return jnp.asarray(mask, dtype=self.numerics.compute)

    def _array(self, array: np.ndarray) -> Any:
        """An input or target in the parameters' dtype: each layer casts it to what it computes in."""
        return jnp.asarray(array, dtype=self._jdtype)

    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, self._y = self._array(X), self._array(y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(self._params, self._stats, self._array(X)))

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(self._mean_loss(self._params, self._stats, self._array(X), self._array(y)))

    def _loss_loaded(self) -> float:
        return float(self._mean_loss(self._params, self._stats, self._X, self._y))

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        (_, (loss, _)), grads = self._value_and_grad(self._params, self._stats, self._array(X), self._array(y),
                                                     self._keeps(len(X)), jmp.NoOpLossScale())
        found = {}
        for path, value in nnx.to_flat_state(grads):
            layers = path.index("layers")  # (…, 'layers', index, attribute, …): wrappers add attributes
            name, link = self._links[(cast(int, path[layers + 1]), ".".join(map(str, path[layers + 2:])))]
            found[name] = link.canonical_array(np.asarray(value.value if hasattr(value, "value") else value))
        return float(loss), found

    def _state_slot(self, path: str) -> tuple[str, str, Link] | None:
        """(canonical kind, parameter name, its layout) for an optimiser state leaf's path."""
        found = _STATE_PATH.search(path)
        if found is None:
            return None
        field, index, attributes = found.groups()
        kind = STATE_FIELDS.get(self.optimizer, {}).get(field)
        if kind is None:
            return None
        name, link = self._links[(int(index), ".".join(re.findall(r"'(\w+)'", attributes)))]
        return kind, name, link

    # ---- replay hooks (compare.py explain) ----

    def _activations(self, X: np.ndarray) -> list[np.ndarray]:
        nnx.update(self._model, self._params, self._stats)
        found, out, keeps = [], self._array(X), self._keeps(len(X))
        for index, layer in enumerate(self._model.layers):
            out = layer(out, keeps[index]) if index in keeps else layer(out)
            found.append(np.asarray(out))
        return found

    def _optimizer_state(self) -> dict[str, Any]:
        found: dict[str, Any] = {kind: {} for kind in self.training.state_kinds()}
        for path, leaf in jax.tree_util.tree_flatten_with_path(self._opt_state)[0]:
            slot = self._state_slot(jax.tree_util.keystr(path))
            if slot is not None:
                kind, name, link = slot
                found[kind][name] = link.canonical_array(np.asarray(leaf))
        return found

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        def replaced(path: Any, leaf: Any) -> Any:
            key = jax.tree_util.keystr(path)
            if key.endswith(".count"):  # Adam's step count
                return jnp.asarray(state["step"], dtype=jnp.asarray(leaf).dtype)
            slot = self._state_slot(key)
            if slot is None:
                return leaf
            kind, name, link = slot
            return jnp.asarray(link.native_array(state[kind][name]), dtype=self._jdtype)

        self._opt_state = jax.tree_util.tree_map_with_path(replaced, self._opt_state)

    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> list[float]:
        params, stats, opt_state, scaler, losses = self._params, self._stats, self._opt_state, self._scaler, []
        scales = []
        for start, stop in bounds:
            keeps = self._keeps(stop - start, advance=True)
            if order is None and stop - start == self._n_train:
                params, stats, opt_state, scaler, loss = self._step(params, stats, opt_state, scaler, self._X, self._y,
                                                                    keeps)
            else:
                rows = np.arange(start, stop) if order is None else order[start:stop]
                params, stats, opt_state, scaler, loss = self._step_on_rows(params, stats, opt_state, scaler, self._X,
                                                                            self._y, rows, keeps)
            losses.append(loss)
            scales.append(scaler.loss_scale)
        self._params, self._stats, self._opt_state, self._scaler = params, stats, opt_state, scaler
        if self.numerics.scaled:
            self._scales += [float(scale) for scale in scales]
        # Read once the steps are queued; float() per loss: jnp.stack would compile for each chunk length.
        return [float(loss) for loss in losses]
