"""A Gluon Block as the port check reads it: recognised blocks found by forward hooks (hybridization paused while
they record), in the order forward calls them; gluon.Trainer and Gluon's own losses for training."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN, AvgPool2d, BatchNorm, Conv2d, Embedding, LayerNorm, Linear, Link, MaxPool2d
from .native import (
    CELL_FUNCTIONS,
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

_WEIGHTS = {"weight": Link("weight"), "bias": Link("bias")}
_NORMS = {"weight": Link("gamma"), "bias": Link("beta")}
_STATS = {"running_mean": Link("running_mean"), "running_var": Link("running_var")}
_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softrelu": "softplus"}
READS = ("Dense", "Conv2D", "rnn.LSTM", "rnn.GRU", "rnn.RNN",
         "BatchNorm", "LayerNorm", "Embedding", "MaxPool2D", "AvgPool2D", "Flatten", "Dropout",
         "Activation", "LeakyReLU", "GELU", "ELU", "Swish")


def _fused(block: Any) -> str:
    act = getattr(block, "act", None)
    return _ACTIVATIONS.get(act._act_type, act._act_type) if act is not None else ""


def _found(path: str, block: Any, side: str) -> Found | None:
    from mxnet import gluon

    nn = gluon.nn
    native_type = f"mxnet.gluon.nn.{type(block).__name__}"
    if isinstance(block, nn.Dense):
        units, in_units = block.weight.shape
        return Found(path, Linear(in_units, units, block.bias is not None), block, native_type,
                     links={k: v for k, v in _WEIGHTS.items() if getattr(block, k) is not None}, fused=_fused(block),
                     flattens=bool(block._flatten))
    if isinstance(block, nn.Conv2D):
        kwargs = block._kwargs
        if kwargs["layout"] != "NCHW" or "adj" in kwargs:
            raise not_readable(side, path, f"{native_type} (layout {kwargs['layout']}, transposed)", READS)
        out_channels, per_group = block.weight.shape[:2]
        conv = Conv2d(per_group * kwargs["num_group"], out_channels, tuple(kwargs["kernel"]), tuple(kwargs["stride"]),
                      tuple(kwargs["pad"]), tuple(kwargs["dilate"]), kwargs["num_group"], not kwargs["no_bias"])
        return Found(path, conv, block, native_type,
                     links={k: v for k, v in _WEIGHTS.items() if getattr(block, k) is not None}, fused=_fused(block))
    if isinstance(block, nn.BatchNorm):
        kwargs = block._kwargs
        if kwargs["axis"] != 1 or kwargs["fix_gamma"] or kwargs["use_global_stats"]:
            raise ValueError(f"model {side}: layer {path!r} ({native_type}) needs axis=1, scale=True and "
                             "use_global_stats=False for check_port to read it")
        found = Found(path, BatchNorm(block.gamma.shape[0], kwargs["momentum"], kwargs["eps"]), block, native_type,
                      links=_NORMS, state_links=_STATS)
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(block, nn.LayerNorm):
        if block._axis != -1:
            raise not_readable(side, path, f"{native_type} over axis {block._axis}", READS)
        found = Found(path, LayerNorm(block.gamma.shape[0], block._epsilon), block, native_type, links=_NORMS)
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(block, nn.Embedding):
        return Found(path, Embedding(*block.weight.shape), block, native_type, links={"weight": Link("weight")})
    if isinstance(block, nn.MaxPool2D | nn.AvgPool2D):
        kwargs = block._kwargs
        if kwargs["layout"] != "NCHW" or kwargs["global_pool"]:
            raise not_readable(side, path, f"{native_type} (layout {kwargs['layout']}, global)", READS)
        full = kwargs["pooling_convention"] == "full"
        args = (tuple(kwargs["kernel"]), tuple(kwargs["stride"]), tuple(kwargs["pad"]), full)
        layer: Any = (MaxPool2d(*args) if isinstance(block, nn.MaxPool2D)
                      else AvgPool2d(*args, kwargs.get("count_include_pad", True)))
        found = Found(path, layer, block, native_type)
        if full:  # Gluon's "full" keeps a last window that starts in the padding; torch's ceil_mode drops it
            found.settings = {**found.settings, "ceil_mode": "full (Gluon's: keeps a window starting in the padding)"}
        return found
    if isinstance(block, gluon.rnn.LSTM | gluon.rnn.GRU | gluon.rnn.RNN):
        return _recurrent(path, block, native_type, side)
    if isinstance(block, nn.Activation):
        return Found(path, None, block, native_type, kind="activation",
                     settings={"function": _ACTIVATIONS.get(block._act_type, block._act_type)})
    if isinstance(block, nn.LeakyReLU):
        return Found(path, None, block, native_type, kind="activation",
                     settings={"function": "leaky_relu", "negative_slope": block._alpha})
    for kind, name in ((nn.GELU, "gelu"), (nn.ELU, "elu"), (nn.Swish, "silu")):
        if isinstance(block, kind):
            return Found(path, None, block, native_type, kind="activation", settings={"function": name})
    if isinstance(block, nn.Flatten):
        return Found(path, None, block, native_type, kind="flatten")
    if isinstance(block, nn.Dropout):
        return Found(path, None, block, native_type, kind="dropout", settings={"rate": block._rate})
    return None


def _recurrent(path: str, block: Any, native_type: str, side: str) -> Found:
    kind = {"lstm": LSTM, "gru": GRU, "rnn_tanh": RNN}.get(block._mode)
    if kind is None or block._num_layers != 1 or block._dir != 1 or block._projection_size:
        raise not_readable(side, path, f"{native_type}(mode={block._mode}, num_layers={block._num_layers}, "
                           f"bidirectional={block._dir == 2}) (one unidirectional layer each)", READS)
    held = block.l0_h2h_bias
    # a second bias held at zero out of training is no second bias (the suite's bias=input)
    bias = "input" if held.grad_req == "null" and not held.data().asnumpy().any() else "two"
    links = {"weight_ih": Link("l0_i2h_weight"), "weight_hh": Link("l0_h2h_weight"), "bias_ih": Link("l0_i2h_bias")}
    if bias == "two":
        links["bias_hh"] = Link("l0_h2h_bias")
    input_size = block.l0_i2h_weight.shape[1]
    found = Found(path, kind(input_size, block._hidden_size, True, bias), block, native_type, links=links,
                  time_major=block._layout == "TNC")
    found.settings = {**found.settings, **CELL_FUNCTIONS}
    return found


def _walk(block: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every block to watch: a recognised one (its own children are its parts), else its children's."""
    for name, child in block._children.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        yield path, child
        if _found_type(child) is None:
            yield from _walk(child, path)


def _found_type(block: Any) -> type | None:
    from mxnet import gluon

    nn = gluon.nn
    kinds = (nn.Dense, nn.Conv2D, nn.BatchNorm, nn.LayerNorm, nn.Embedding, nn.MaxPool2D, nn.AvgPool2D, nn.Activation,
             nn.LeakyReLU, nn.GELU, nn.ELU, nn.Swish, nn.Flatten, nn.Dropout, gluon.rnn.LSTM, gluon.rnn.GRU,
             gluon.rnn.RNN)
    return next((kind for kind in kinds if isinstance(block, kind)), None)


def _initialiser(param: Any) -> str:
    """A parameter's own initialiser, else the one net.initialize() was given."""
    given = param.init if param.init is not None else (param._deferred_init[2] if param._deferred_init else None)
    if given is None:
        return "net.initialize()'s"
    return given if isinstance(given, str) else type(given).__name__


def _gradient(param: Any) -> np.ndarray:
    """A parameter's gradient; zeros for one held out of training (grad_req='null')."""
    if param.grad_req == "null":
        return np.zeros(param.shape, np.dtype(param.dtype))
    return param.grad().asnumpy()


class GluonModel(NativeModel):
    framework = "mxnet"
    title = "MXNet Gluon"
    adam_eps = "1e-08, added to √v, the bias correction in the step size (Gluon's Adam before adam_update)"

    @classmethod
    def accepts(cls, model: Any) -> bool:
        mxnet = sys.modules.get("mxnet")
        return mxnet is not None and isinstance(model, mxnet.gluon.Block)

    def _prepare(self, X: np.ndarray) -> None:
        from mxnet import autograd, nd

        params = list(self.model.collect_params().values())
        for param in params:
            if param._data is None and param._deferred_init == ():
                raise ValueError(f"model {self.side}: its Gluon parameter {param.name!r} is not initialised: call "
                                 "net.initialize() in its factory")
        if any(0 in param.shape or param._data is None for param in params):  # deferred: shapes from an input
            with autograd.predict_mode():
                self.model(nd.array(X, dtype=X.dtype))

    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        found = []
        for path, block in list(_walk(self.model, "")) or [("", self.model)]:
            item = _found(path, block, self.side)
            if item is None and _found_type(block) is None and not block._children and block._reg_params:
                raise not_readable(self.side, path, f"mxnet.gluon {type(block).__name__}", READS)
            if item is not None and item.has_params:
                item.initialiser = ", ".join(f"{name} {_initialiser(param)}"
                                             for name, param in block._reg_params.items())
            found.append((path, block, item))
        return found

    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        from mxnet import autograd, gluon, nd

        calls: list[tuple[int, Any, Any]] = []
        seen: set[int] = set()

        def hook(index: int) -> Any:
            def record(block: Any, inputs: Any, output: Any) -> None:
                if index not in seen and inputs:
                    seen.add(index)
                    calls.append((index, inputs[0].asnumpy(), first(output).asnumpy()))
            return record

        handles = [block.register_forward_hook(hook(index)) for index, block in enumerate(modules)]
        hybrid: list[tuple[Any, bool]] = []
        self.model.apply(lambda block: hybrid.append((block, block._active))
                         if isinstance(block, gluon.HybridBlock) else None)
        try:
            for block, _ in hybrid:
                block._active = False  # a hybridized block runs its cached graph: its children's hooks never fire
            with autograd.record(train_mode=train):
                output = self.model(nd.array(X, dtype=X.dtype))
        finally:
            for handle in handles:
                handle.detach()
            for block, active in hybrid:
                block._active = active
        return first(output).asnumpy(), calls

    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        return list(module.collect_params().items())

    def _set_rate(self, found: Found, rate: float) -> None:
        from mxnet import gluon

        found.module._rate = rate
        # a hybridized block runs its cached graph, which holds the rate it was traced with
        self.model.apply(lambda block: block._clear_cached_op() if isinstance(block, gluon.HybridBlock) else None)

    def dtype(self) -> str:
        params = list(self.model.collect_params().values())
        return str(np.dtype(params[0].dtype)) if params else "float32"

    def cast(self, dtype: str) -> None:
        self.model.cast(dtype)

    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        return {name: link.of(found.module).data().asnumpy() for name, link in links.items()}

    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        from mxnet import nd

        for name, link in links.items():
            param = link.of(found.module)
            param.set_data(nd.array(values[name], dtype=param.dtype))

    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        from mxnet import autograd, gluon, nd

        options: dict[str, Any] = {"learning_rate": training.lr, "wd": training.weight_decay}
        if training.optimizer == "momentum":
            options["momentum"] = training.momentum
        trainer = gluon.Trainer(self.model.collect_params(), "adam" if training.optimizer == "adam" else "sgd",
                                options)
        l2 = gluon.loss.L2Loss()  # ½ (ŷ − y)² averaged per example: twice it is the mean squared error
        cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()
        inputs, target = nd.array(X, dtype=X.dtype), nd.array(y, dtype=y.dtype)
        losses: list[float] = []
        params: list[Arrays] = []
        grads: Arrays = {}
        for start, stop in batches(len(X), training):
            with autograd.record(train_mode=True):
                output = first(self.model(inputs[start:stop]))
                if training.loss == "mse":
                    loss = 2 * l2(output, target[start:stop].reshape(output.shape))
                else:  # every position an example (an image's classes its channels), averaged per example
                    classes = output.shape[1] if output.ndim == 4 else output.shape[-1]
                    rows = (output.transpose(axes=(0, 2, 3, 1)) if output.ndim == 4 else output).reshape(-1, classes)
                    loss = cross_entropy(rows, target[start:stop].reshape(-1)).reshape(stop - start, -1).mean(axis=1)
            loss.backward()
            if not grads:  # the sum's gradients (Trainer.step divides by the batch): the mean's
                grads = {f"{item.path}.{name}": canonical(item, name, link, _gradient(link.of(item.module))
                                                          / (stop - start))
                         for item in self.layers for name, link in item.links.items()}
            # the sum's gradient over the batch: the mean's; a parameter off the loss's path keeps its value
            trainer.step(stop - start, ignore_stale_grad=True)
            losses.append(float(loss.mean().asscalar()))
            params.append(self.params())
        return Trajectory(losses, params, grads)
