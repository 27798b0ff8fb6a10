"""A Flax NNX Module as the port check reads it: its Linear, Conv, BatchNorm, LayerNorm, Embed and Dropout modules
seen through their classes' __call__ while a forward runs (activations and pooling are functions in Flax, not
modules: the layer-by-layer comparison sees what they compute); nnx.Optimizer with optax for training."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN, BatchNorm, Conv2d, Embedding, LayerNorm, Linear, Link, Recurrent
from .native import (
    RECURRENT,
    TWO_PASS,
    Arrays,
    Found,
    NativeModel,
    Stacked,
    Training,
    Trajectory,
    batches,
    canonical,
    first,
    not_readable,
)

READS = ("Linear", "Conv (2-D)", "RNN of an OptimizedLSTMCell, LSTMCell, GRUCell or SimpleCell", "BatchNorm",
         "LayerNorm", "Embed", "Dropout")
FAST_VARIANCE = "E[x²] − E[x]² (use_fast_variance=True)"


def _padding(module: Any, path: str, side: str) -> Any:
    padding = module.padding
    if isinstance(padding, str):
        if padding.upper() in ("SAME", "VALID"):
            return padding.lower()
    elif isinstance(padding, int):
        return padding
    else:
        pairs = [(item, item) if isinstance(item, int) else tuple(item) for item in padding]
        if all(before == after for before, after in pairs):
            return tuple(before for before, _ in pairs)
    raise not_readable(side, path, f"flax.nnx.Conv with padding {padding!r}", READS)


def _found(path: str, module: Any, side: str) -> Found | None:
    from flax import nnx

    native_type = f"flax.nnx.{type(module).__name__}"
    if isinstance(module, nnx.Linear):
        return Found(path, Linear(module.in_features, module.out_features, module.use_bias), module, native_type,
                     links={"weight": Link("kernel", (1, 0)), **({"bias": Link("bias")} if module.use_bias else {})})
    if isinstance(module, nnx.Conv):
        if len(module.kernel_size) != 2 or any(rate != 1 for rate in np.atleast_1d(module.input_dilation or 1)):
            raise not_readable(side, path, f"{native_type} of kernel {module.kernel_size} or input dilation", READS)
        layer = Conv2d(module.in_features, module.out_features, tuple(module.kernel_size), module.strides or 1,
                       _padding(module, path, side), module.kernel_dilation or 1, module.feature_group_count,
                       module.use_bias)
        return Found(path, layer, module, native_type,
                     links={"weight": Link("kernel", (2, 3, 1, 0)), **({"bias": Link("bias")} if module.use_bias
                                                                       else {})})
    if isinstance(module, nnx.BatchNorm):
        if not (module.use_scale and module.use_bias) or module.axis not in (-1, 1, 3):
            raise not_readable(side, path, f"{native_type} without scale or bias, or over axis {module.axis}", READS)
        found = Found(path, BatchNorm(module.num_features, module.momentum, module.epsilon), module, native_type,
                      links={"weight": Link("scale"), "bias": Link("bias")},
                      state_links={"running_mean": Link("mean"), "running_var": Link("var")})
        found.settings = {**found.settings, "variance": FAST_VARIANCE if module.use_fast_variance else TWO_PASS}
        return found
    if isinstance(module, nnx.LayerNorm):
        affine = bool(module.use_scale and module.use_bias)
        if affine != bool(module.use_scale or module.use_bias):
            raise not_readable(side, path, f"{native_type} with only one of scale and bias", READS)
        found = Found(path, LayerNorm(module.num_features, module.epsilon, affine), module, native_type,
                      links={"weight": Link("scale"), "bias": Link("bias")} if affine else {})
        found.settings = {**found.settings, "variance": FAST_VARIANCE if module.use_fast_variance else TWO_PASS}
        return found
    if isinstance(module, nnx.Embed):
        return Found(path, Embedding(module.num_embeddings, module.features), module, native_type,
                     links={"weight": Link("embedding")})
    if isinstance(module, nnx.RNN):
        return _recurrent(path, module, native_type, side)
    if isinstance(module, nnx.Dropout):
        return Found(path, None, module, native_type, kind="dropout", settings={"rate": module.rate})
    return None


def _recurrent(path: str, module: Any, native_type: str, side: str) -> Found:
    from flax import nnx

    cell = module.cell
    if module.reverse or module.return_carry:
        raise not_readable(side, path, f"{native_type} reversed or returning its carry", READS)
    gates = "|".join  # Flax's LSTMCell keeps one Linear per gate, in torch's order i, f, g, o
    if isinstance(cell, nnx.OptimizedLSTMCell):
        kind: type[Recurrent] = LSTM
        links = {"weight_ih": Link("cell.dense_i.kernel", (1, 0)), "weight_hh": Link("cell.dense_h.kernel", (1, 0)),
                 "bias_ih": Link("cell.dense_h.bias")}
    elif isinstance(cell, nnx.LSTMCell):
        kind = LSTM
        links = {"weight_ih": Stacked(gates(f"cell.i{g}.kernel" for g in ("i", "f_", "g", "o")), (1, 0)),
                 "weight_hh": Stacked(gates(f"cell.h{g}.kernel" for g in ("i", "f", "g", "o")), (1, 0)),
                 "bias_ih": Stacked(gates(f"cell.h{g}.bias" for g in ("i", "f", "g", "o")))}
    elif isinstance(cell, nnx.GRUCell | nnx.SimpleCell):
        kind = GRU if isinstance(cell, nnx.GRUCell) else RNN
        links = {"weight_ih": Link("cell.dense_i.kernel", (1, 0)), "weight_hh": Link("cell.dense_h.kernel", (1, 0)),
                 "bias_ih": Link("cell.dense_i.bias")}
    else:
        raise not_readable(side, path, f"{native_type} of a {type(cell).__name__}", READS)
    found = Found(path, kind(cell.in_features, cell.hidden_features, True, "input"), module, native_type,
                  links=links, time_major=module.time_major)
    functions = {"activation": cell.activation_fn, "gate activation": getattr(cell, "gate_fn", None)}
    found.settings = {**found.settings, **{key: getattr(value, "__name__", str(value))
                                           for key, value in functions.items() if value is not None}}
    return found


@contextmanager
def _recording(modules: list[Any], calls: list[tuple[int, Any, Any]]) -> Any:
    """Each watched module's first call recorded, through its class's __call__ (a Python special method is looked
    up on the type, so an instance cannot be patched); the classes restored after."""
    position = {id(module): index for index, module in enumerate(modules)}
    seen: set[int] = set()
    classes = {type(module) for module in modules}
    originals = {cls: cls.__dict__.get("__call__") for cls in classes}

    def wrapped(cls: type) -> Any:
        original = cls.__call__

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            output = original(self, *args, **kwargs)
            index = position.get(id(self))
            if index is not None and index not in seen and args:
                seen.add(index)
                calls.append((index, np.asarray(args[0]).copy(), np.asarray(output).copy()))
            return output
        return call

    try:
        for cls in classes:
            cls.__call__ = wrapped(cls)
        yield
    finally:
        for cls, original in originals.items():
            if original is None:
                del cls.__call__
            else:
                cls.__call__ = original


def _initialiser(function: Any) -> str:
    """An initialiser's name: variance_scaling's own settings where it is one (lecun_normal, glorot_uniform …)."""
    name = getattr(function, "__qualname__", type(function).__name__)
    if name.startswith("variance_scaling") and function.__closure__:
        found = dict(zip(function.__code__.co_freevars, (cell.cell_contents for cell in function.__closure__),
                         strict=True))
        return f"variance_scaling({found.get('scale')}, {found.get('mode')}, {found.get('distribution')})"
    return name.split(".")[0]


@contextmanager
def _mode(model: Any, train: bool) -> Any:
    """The model in training or evaluation mode meanwhile (nnx's train() and eval()), each module's own flags as
    they were after."""
    flags = [(module, name, getattr(module, name)) for _, module in model.iter_modules()
             for name in ("use_running_average", "deterministic") if hasattr(module, name)]
    model.train() if train else model.eval()
    try:
        yield
    finally:
        for module, name, value in flags:
            setattr(module, name, value)


class FlaxModel(NativeModel):
    framework = "jax"
    title = "Flax NNX"
    weight_decay = "coupled: optax.add_decayed_weights before the optimiser adds wd·w to the gradient"
    adam_eps = "1e-08, added to √v̂ (optax.adam, eps_root 0)"

    @classmethod
    def accepts(cls, model: Any) -> bool:
        nnx = sys.modules.get("flax.nnx")
        return nnx is not None and isinstance(model, nnx.Module)

    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        from flax import nnx

        found: list[tuple[str, Any, Found | None]] = []
        inside: list[str] = []  # the paths of recurrent layers: their cells' Linear modules are their parts
        for parts, module in self.model.iter_modules():
            path = ".".join(map(str, parts))
            if any(path.startswith(f"{outer}.") for outer in inside):
                continue
            if not path and not isinstance(module, nnx.Linear | nnx.Conv | nnx.BatchNorm | nnx.LayerNorm | nnx.Embed
                                           | nnx.RNN):
                continue
            item = _found(path or type(module).__name__, module, self.side)
            if item is None and any(isinstance(value, nnx.Param) for value in vars(module).values()):
                raise not_readable(self.side, path, f"flax.nnx.{type(module).__name__}", READS)
            if item is not None:
                item.initialiser = ", ".join(f"{name.removesuffix('_init')} {_initialiser(value)}"
                                             for name, value in vars(module).items()
                                             if name.endswith("_init") and callable(value))
                found.append((item.path, module, item))
                if item.kind in RECURRENT:
                    inside.append(path)
        return found

    def _channels_last(self, found: list[Found]) -> bool:
        return any(item.kind == "conv2d" for item in found)  # Flax convolves (N, H, W, C)

    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        import jax.numpy as jnp

        calls: list[tuple[int, Any, Any]] = []
        with _mode(self.model, train), _recording(modules, calls):
            output = first(self.model(jnp.asarray(X)))
        return np.asarray(output), calls

    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        from flax import nnx

        return [(".".join(map(str, path)), node) for path, node in nnx.iter_graph(module)
                if isinstance(node, nnx.Param | nnx.BatchStat)]

    def _set_rate(self, found: Found, rate: float) -> None:
        found.module.rate = rate

    def dtype(self) -> str:
        from flax import nnx

        leaves: list[Any] = [value for _, value in nnx.to_flat_state(nnx.state(self.model, nnx.Param))]
        return str(np.dtype(getattr(leaves[0], "value", leaves[0]).dtype)) if leaves else "float32"

    def cast(self, dtype: str) -> None:
        import jax
        import jax.numpy as jnp
        from flax import nnx

        if dtype == "float64" and not jax.config.read("jax_enable_x64"):
            # JAX holds float64 only with it on; it goes back off when the model is cast back (a shadow's run)
            jax.config.update("jax_enable_x64", True)
            self._x64_was_off = True
        state = nnx.state(self.model, nnx.Any(nnx.Param, nnx.BatchStat))  # not the random keys cells keep
        nnx.update(self.model, jax.tree.map(lambda value: value.astype(dtype) if jnp_floating(value) else value,
                                            state))
        for _, module in self.model.iter_modules():  # what layers compute in, and cells make their carry in
            for name in ("param_dtype", "dtype"):
                if getattr(module, name, None) is not None:
                    setattr(module, name, getattr(jnp, dtype))
        if dtype != "float64" and getattr(self, "_x64_was_off", False):
            jax.config.update("jax_enable_x64", False)
            self._x64_was_off = False

    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        return {name: np.stack([np.array(variable.value) for variable in _variables(found.module, link)])
                if isinstance(link, Stacked) else np.array(link.of(found.module).value) for name, link in links.items()}

    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        import jax.numpy as jnp

        for name, link in links.items():
            variables = _variables(found.module, link)
            parts = values[name] if isinstance(link, Stacked) else [values[name]]
            for variable, part in zip(variables, parts, strict=True):
                variable.value = jnp.asarray(part, dtype=variable.value.dtype)

    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        import jax.numpy as jnp
        import optax
        from flax import nnx

        decay = [optax.add_decayed_weights(training.weight_decay)] if training.weight_decay else []
        rule = (optax.adam(training.lr) if training.optimizer == "adam" else
                optax.sgd(training.lr, momentum=training.momentum if training.optimizer == "momentum" else None))
        optimizer = nnx.Optimizer(self.model, optax.chain(*decay, rule), wrt=nnx.Param)

        def loss_fn(model: Any, inputs: Any, target: Any) -> Any:
            output = first(model(inputs))
            if training.loss == "mse":
                return optax.losses.squared_error(output, target.reshape(output.shape)).mean()
            rows = output.reshape(-1, output.shape[-1])  # a class axis last: every position an example
            return optax.losses.softmax_cross_entropy_with_integer_labels(rows, target.reshape(-1)).mean()

        @nnx.jit  # one compiled step: op by op, JAX compiles every primitive on its first use (seconds)
        def step(model: Any, optimizer: Any, inputs: Any, target: Any) -> tuple[Any, Any]:
            loss, found = nnx.value_and_grad(loss_fn)(model, inputs, target)
            optimizer.update(model, found)
            return loss, found

        inputs = jnp.asarray(self.native_input(X))
        target = jnp.asarray(self.native_targets(y, training) if training.loss == "mse" else y.astype(np.int32))
        losses: list[float] = []
        params: list[Arrays] = []
        grads: Arrays = {}
        with _mode(self.model, True):
            for start, stop in batches(len(X), training):
                loss, found = step(self.model, optimizer, inputs[start:stop], target[start:stop])
                if not grads:
                    grads = self._grads(found)
                losses.append(float(loss))
                params.append(self.params())
        return Trajectory(losses, params, grads)

    def _grads(self, state: Any) -> Arrays:
        """The canonical gradients from nnx.grad's State (shaped like the model's parameters)."""
        from flax import nnx

        flat = {".".join(map(str, key)): np.asarray(getattr(value, "value", value)) for key, value in
                nnx.to_flat_state(state)}
        found: Arrays = {}
        for item in self.layers:
            prefix = "" if item.module is self.model else f"{item.path}."
            for name, link in item.links.items():
                native = (np.stack([flat[f"{prefix}{part}"] for part in link.parts]) if isinstance(link, Stacked)
                          else flat[f"{prefix}{link.native}"])
                found[f"{item.path}.{name}"] = canonical(item, name, link, native)
        return found


def _variables(module: Any, link: Link) -> list[Any]:
    return [Link(part).of(module) for part in link.parts] if isinstance(link, Stacked) else [link.of(module)]


def jnp_floating(value: Any) -> bool:
    import jax

    return bool(jax.dtypes.issubdtype(value.dtype, np.floating))
