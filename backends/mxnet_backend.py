"""MXNet Gluon backend: gluon.nn blocks, gluon.loss, gluon.Trainer, autograd.record().

Importing this module restores the alias ``numpy.bool = bool`` when NumPy lacks it (NumPy 1.24
removed it and MXNet 1.9.1 still uses it): the one process-wide change this backend makes.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..layers import Build, Link, built, out_features
from .base import Backend, Params
from .errors import error_line
from .numerics import on

if "bool" not in np.__dict__:  # hasattr would trigger NumPy 1.2x's FutureWarning
    np.bool = bool  # type: ignore[attr-defined]

try:
    import mxnet as mx
    from mxnet import autograd, gluon, nd

    nd.zeros(1).wait_to_read()  # MXNet starts its engine on first use: a bad MXNET_ENGINE_TYPE fails here
except Exception as err:  # numpy>=2: AttributeError; a bad MXNET_* variable: MXNetError; a missing .so: OSError
    _base = sys.modules.get("mxnet.base")
    if _base is not None and hasattr(_base, "_notify_shutdown"):  # it would raise the same error again at exit
        atexit.unregister(_base._notify_shutdown)
    raise ImportError(
        f"the mxnet backend needs MXNet 1.9.1 on numpy<2 and valid MXNET_* settings ({error_line(err)}); "
        "install it with: pip install mxnet==1.9.1 'numpy<2'"
    ) from err
from ..optimizers.mxnet_optimizer import MxnetOptimizer


class _NetWithLoss(gluon.HybridBlock):
    """The per-example loss of the network's output, as one hybridizable block; in training, one mask per
    dropout block after y (`masked`: their positions)."""

    def __init__(self, net: Any, loss: Any, masked: list[int]) -> None:
        super().__init__()
        self._masked = masked
        with self.name_scope():
            self.net, self.loss = net, loss

    def hybrid_forward(self, F: Any, x: Any, y: Any, *keeps: Any) -> Any:
        if not keeps:
            return self.loss(self.net(x), y)
        by_block, out = dict(zip(self._masked, keeps, strict=True)), x
        for index in range(len(self.net)):
            out = self.net[index](out, by_block[index]) if index in by_block else self.net[index](out)
        return self.loss(out, y)


class _SmoothedCrossEntropy(gluon.HybridBlock):
    """Gluon's SoftmaxCrossEntropyLoss has no label smoothing (mxnet/gluon/loss.py, SoftmaxCrossEntropyLoss): it is
    given the smoothed labels, (1 − ε)·one-hot + ε/K made with MXNet's one_hot, as dense labels (sparse_label=False)."""

    def __init__(self, classes: int, smoothing: float, dtype: str) -> None:
        super().__init__()
        self._classes, self._smoothing, self._dtype = classes, smoothing, dtype
        with self.name_scope():
            self.loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False, from_logits=False)

    def hybrid_forward(self, F: Any, output: Any, label: Any) -> Any:
        hot = F.one_hot(F.reshape(label, shape=(-1,)), self._classes, dtype=self._dtype)
        return self.loss(output, hot * (1 - self._smoothing) + self._smoothing / self._classes)


class _WeightedCrossEntropy(gluon.HybridBlock):
    """Gluon's SoftmaxCrossEntropyLoss with each example's sample_weight its class's weight, scaled by n / Σ w[yₙ]:
    Trainer.step(n) then averages to torch's weighted mean, Σ w[yₙ]·lₙ / Σ w[yₙ] (Gluon has no weighted mean)."""

    def __init__(self, weights: tuple[float, ...], dtype: str) -> None:
        super().__init__()
        with self.name_scope():
            self.loss = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=True, from_logits=False)
            self.weights = self.params.get_constant("weights", nd.array(weights, dtype=dtype))

    def hybrid_forward(self, F: Any, output: Any, label: Any, weights: Any) -> Any:
        weight = F.take(weights, F.reshape(label, shape=(-1,)))
        scale = F.broadcast_div(F.broadcast_mul(weight, F.sum(F.ones_like(weight))), F.sum(weight))
        return self.loss(output, label, F.reshape(scale, shape=(-1, 1)))


class MxnetBackend(Backend):
    name = "mxnet"
    framework = "mxnet"  # the key of its translators in each layer module
    replay = True
    native_init_description = (
        "Block.initialize() default: Uniform(-0.07, 0.07) weights, zero biases; mx.random.seed(seed)")
    load_copies = True  # nd.array copies into MXNet's own memory
    modes = ("eager", "compiled")  # imperative Gluon, or hybridized into cached graphs
    usual_mode = "compiled"
    keeps_state = True  # running statistics: Parameters with grad_req "null", updated in autograd's train mode

    def math_modes(self) -> dict[str, str]:
        # MXNet 1.9.1's CPU build: no TF32; its cuDNN switches are environment variables (docs/faq/env_var.md)
        return {"device": self.device, "TF32 matmul": "-", "TF32 convolution": "-",
                "deterministic": on(os.environ.get("MXNET_ENFORCE_DETERMINISM", "0") == "1"),
                "autotune": on(os.environ.get("MXNET_CUDNN_AUTOTUNE_DEFAULT", "1") != "0")}

    def _build(self) -> None:
        if self.deterministic:  # read by MXNet's cuDNN operators as they run (docs/faq/env_var.md)
            os.environ["MXNET_ENFORCE_DETERMINISM"] = "1"
        self._net = gluon.nn.HybridSequential()
        build = Build(self.dtype)
        translators = [self.translator(layer) for layer in self.spec]
        self._net.add(*built(translators, self.spec, build))
        self._net.initialize(ctx=mx.cpu())
        self._net.cast(self.dtype)  # layers built without a dtype option (Gluon BatchNorm) take the model's
        compiled = self.mode == "compiled"
        self._net.hybridize(compiled, static_alloc=True)  # one cached graph per batch shape, ~30 % faster
        # Each canonical parameter with the Gluon Parameter that holds it and the layout it is held in.
        self._links: dict[str, tuple[Any, Link]] = {
            f"{index}.{name}": (link.of(self._net[index]), link)
            for index, (translator, layer) in enumerate(zip(translators, self.spec, strict=True))
            for name, link in translator.links_for(layer).items() if name in layer.params()}
        self._state_params: dict[str, tuple[Any, Link]] = {
            f"{index}.{name}": (link.of(self._net[index]), link)
            for index, (translator, layer) in enumerate(zip(translators, self.spec, strict=True))
            for name, link in translator.state_links_for(layer).items() if name in layer.state()}
        # Gluon losses are per example; Trainer.step(batch_size) then divides the summed gradient by
        # the batch size, which makes the batch mean. L2Loss is ½(ŷ−y)², so weight=2 gives the MSE;
        # HuberLoss(rho) is torch's HuberLoss(delta) divided by delta, so weight=delta undoes that.
        self._loss_fn = {
            "mse": gluon.loss.L2Loss(weight=2.0),
            "half-mse": gluon.loss.L2Loss(),
            "huber": gluon.loss.HuberLoss(rho=self.huber_delta, weight=self.huber_delta),
            "l1": gluon.loss.L1Loss(),  # |ŷ − y| averaged over each example's outputs
            # from_sigmoid=False: ŷ are logits, relu(ŷ) − ŷ·y + softrelu(−|ŷ|), per example its outputs' mean
            "bce-with-logits": gluon.loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
            # sparse_label: y holds class indices (float, as pick takes them); from_logits=False: the loss
            # applies log_softmax itself (Keras's from_logits=False means the opposite: y_pred are probabilities).
            "cross-entropy": (_SmoothedCrossEntropy(out_features(self.spec), self.label_smoothing, self.dtype)
                              if self.label_smoothing else
                              _WeightedCrossEntropy(self.class_weights, self.dtype)
                              if self.class_weights is not None else
                              gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=True, from_logits=False)),
        }[self.loss_name]
        self._loss_fn.initialize(ctx=mx.cpu())  # a loss's own constants (the class weights), never trained
        self._net_loss = _NetWithLoss(self._net, self._loss_fn, self.masked_layers)
        self._net_loss.hybridize(compiled, static_alloc=True)  # forward and loss in one cached graph per step
        # A cached graph takes the inputs it was first called with: evaluation, without masks, has its own.
        self._eval_net_loss = _NetWithLoss(self._net, self._loss_fn, []) if self.masked_layers else self._net_loss
        self._eval_net_loss.hybridize(compiled, static_alloc=True)

    def _get_params(self) -> Params:
        return {name: link.canonical_array(param.data().asnumpy()) for name, (param, link) in self._links.items()}

    def _set_params(self, params: Params) -> None:
        for name, value in params.items():
            param, link = self._links[name]
            param.set_data(nd.array(link.native_array(value), dtype=self.dtype))

    def _get_state(self) -> Params:
        return {name: link.canonical_array(param.data().asnumpy())
                for name, (param, link) in self._state_params.items()}

    def _set_state(self, state: Params) -> None:
        for name, value in state.items():
            param, link = self._state_params[name]
            param.set_data(nd.array(link.native_array(value), dtype=self.dtype))

    def _native_init(self, seed: int) -> None:
        mx.random.seed(seed)  # MXNet has no generator object: native mode seeds its global RNG
        self._net.initialize(mx.init.Uniform(), force_reinit=True)

    def _reset_optimizer(self) -> None:
        self._optimizer = MxnetOptimizer(self.training, self._net.collect_params(), self.dtype)
        self._trainer = self._optimizer.trainer

    def _penalty(self) -> float:
        return self._optimizer.penalty()

    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[list[np.ndarray]]:
        loader = gluon.data.DataLoader(gluon.data.ArrayDataset(np.arange(n_rows)), batch_size=batch_size,
                                       shuffle=shuffle)
        # Gluon's RandomSampler shuffles with NumPy's global RNG: seed it for each epoch's draw, carry its
        # state from epoch to epoch, and give the caller's global state back in between.
        ours = np.random.RandomState(seed).get_state()
        for _ in range(epochs):
            saved = np.random.get_state()
            np.random.set_state(ours)
            try:
                epoch = [batch.asnumpy() for batch in loader]
                ours = np.random.get_state()
            finally:
                np.random.set_state(saved)
            yield epoch

    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, self._y = nd.array(X, dtype=self.dtype), nd.array(y, dtype=self.dtype)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._net(nd.array(X, dtype=self.dtype)).asnumpy()

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return self._eval_net_loss(nd.array(X, dtype=self.dtype), nd.array(y, dtype=self.dtype)).mean().asscalar()

    def _loss_loaded(self) -> float:
        return self._eval_net_loss(self._X, self._y).mean().asscalar()

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        with autograd.record():  # the same fused graph that training steps through
            loss = self._net_loss(nd.array(X, dtype=self.dtype), nd.array(y, dtype=self.dtype),
                                  *self._keeps(len(X)).values())
        loss.backward()  # sums per-example gradients; divide as Trainer.step(batch_size) would
        grads = {name: link.canonical_array((param.grad() / len(X)).asnumpy())
                 for name, (param, link) in self._links.items()}
        return loss.mean().asscalar(), grads

    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> np.ndarray:
        X, y = self._X, self._y
        if order is not None:
            index = nd.array(order, dtype="int64")
            X, y = nd.take(X, index), nd.take(y, index)  # batches are then slices
        per_example = []
        for start, stop in bounds:
            with autograd.record():
                loss = self._net_loss(X[start:stop], y[start:stop], *self._keeps(stop - start, advance=True).values())
            loss.backward()
            self._optimizer.step(stop - start)
            per_example.append(loss)
        return self._batch_means(per_example, bounds).asnumpy()  # one wait on the async engine per epoch

    @staticmethod
    def _batch_means(per_example: list[Any], bounds: list[tuple[int, int]]) -> Any:
        """Each step's mean loss, with one reshape-and-mean for the leading batches of equal size."""
        if len(per_example) == 1:
            return per_example[0].mean()
        size = bounds[0][1] - bounds[0][0]
        equal = next((i for i, (start, stop) in enumerate(bounds) if stop - start != size), len(bounds))
        means = [nd.concat(*per_example[:equal], dim=0).reshape((equal, size)).mean(axis=1)]
        return nd.concat(*means, *(loss.mean() for loss in per_example[equal:]), dim=0)

    # ---- replay hooks (compare.py explain) ----

    def _activations(self, X: np.ndarray) -> list[np.ndarray]:
        found, out, keeps = [], nd.array(X, dtype=self.dtype), self._keeps(len(X))
        with autograd.train_mode():  # the activations of a training step (batch statistics, dropout masks)
            for index in range(len(self._net)):
                out = self._net[index](out, keeps[index]) if index in keeps else self._net[index](out)
                found.append(out.asnumpy())
        return found

    def _slots(self) -> dict[str, int]:
        """Each parameter's index in the Trainer, which keys its optimiser state."""
        position = {id(param): index for index, param in enumerate(self._trainer._params)}
        return {name: position[id(param)] for name, (param, _) in self._links.items()}

    def _optimizer_state(self) -> dict[str, Any]:
        found: dict[str, Any] = {kind: {} for kind in self.training.state_kinds()}
        for name, index in self._slots().items():
            link = self._links[name][1]
            for kind, value in self._optimizer.state(index).items():
                found[kind][name] = link.canonical_array(value)
        return found

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        self._optimizer.set_state(state["step"], {
            index: {kind: self._links[name][1].native_array(state[kind][name]) for kind in self.training.state_kinds()}
            for name, index in self._slots().items()})
