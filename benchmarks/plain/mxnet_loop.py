"""The plain MXNet loops, the yardstick of the suite's mxnet backend, written by hand;
from the suite it takes only the spec's layer type and get_backend's import-time setting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear, get_backend

from . import CNN_CONVS, CNN_LINEAR, CNN_LR, LR, SEQUENCE_HIDDEN, SEQUENCE_LR


def plain_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
               batches: list[np.ndarray], compiled: bool = True) -> Callable[[], None]:
    """Gluon with L2Loss(weight=2) as the mean squared error; `compiled` hybridizes the net and the loss."""
    net = _gluon_net(spec, params, hybridize=compiled)
    from mxnet import autograd, gluon, nd

    loss_fn = gluon.loss.L2Loss(weight=2.0)
    loss_fn.hybridize(compiled, static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR}, kvstore=None)
    Xn, yn = nd.array(X), nd.array(y)

    def run() -> None:
        for batch in batches:  # as d2l's data_iter: indices to an NDArray per batch
            idx = nd.array(batch, dtype="int64")
            xb, yb = nd.take(Xn, idx), nd.take(yn, idx)
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(len(idx))
        nd.waitall()  # MXNet is asynchronous: the work is done only when the engine is idle

    return run


def reference_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
                   batch_size: int) -> tuple[Callable[[], None], int]:
    """The Gluon reference of d2l §3.3 as written: DataLoader over ArrayDataset, Sequential, L2Loss."""
    net = _gluon_net(spec, params, hybridize=False)
    from mxnet import autograd, gluon, nd

    loss_fn = gluon.loss.L2Loss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": LR})
    loader = gluon.data.DataLoader(gluon.data.ArrayDataset(nd.array(X), nd.array(y)), batch_size, shuffle=True)

    def run() -> None:
        for xb, yb in loader:
            with autograd.record():
                loss = loss_fn(net(xb), yb)
            loss.backward()
            trainer.step(batch_size)
        nd.waitall()

    return run, len(loader)


def _gluon_net(spec: Any, params: dict[str, np.ndarray], hybridize: bool) -> Any:
    get_backend("mxnet")  # its numpy.bool shim must run before MXNet is imported
    from mxnet import gluon, nd

    net = gluon.nn.HybridSequential() if hybridize else gluon.nn.Sequential()
    for layer in spec:
        net.add(gluon.nn.Dense(layer.out_features, in_units=layer.in_features) if isinstance(layer, Linear)
                else gluon.nn.Activation("tanh"))
    net.initialize()
    if hybridize:
        net.hybridize(static_alloc=True)
    for name, value in params.items():
        index, kind = name.split(".")
        getattr(net[int(index)], kind).set_data(nd.array(value, dtype="float32"))
    return net


def cnn_loop(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
              batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("mxnet")  # its numpy.bool shim must run before MXNet is imported
    from mxnet import autograd, gluon, nd

    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(6, 3, padding=1, in_channels=1), gluon.nn.Activation("relu"), gluon.nn.MaxPool2D(2),
            gluon.nn.Conv2D(16, 3, padding=1, in_channels=6), gluon.nn.Activation("relu"), gluon.nn.MaxPool2D(2),
            gluon.nn.Flatten(), gluon.nn.Dense(10, in_units=64))
    net.initialize()
    for native, index in ((0, CNN_CONVS[0]), (3, CNN_CONVS[1]), (7, CNN_LINEAR)):
        net[native].weight.set_data(nd.array(params[f"{index}.weight"], dtype="float32"))
        net[native].bias.set_data(nd.array(params[f"{index}.bias"], dtype="float32"))
    net.hybridize(static_alloc=True)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    loss_fn.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": CNN_LR}, kvstore=None)
    Xn, yn = nd.array(X), nd.array(y)

    def run() -> None:
        for batch in batches:
            idx = nd.array(batch, dtype="int64")
            with autograd.record():
                loss = loss_fn(net(nd.take(Xn, idx)), nd.take(yn, idx))
            loss.backward()
            trainer.step(len(batch))
        nd.waitall()

    return run


def lstm_loop(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Callable[[], None]:
    get_backend("mxnet")  # its numpy.bool shim must run before MXNet is imported
    from mxnet import autograd, gluon, nd

    class Forecaster(gluon.HybridBlock):
        def __init__(self) -> None:
            super().__init__()
            with self.name_scope():
                self.lstm = gluon.rnn.LSTM(SEQUENCE_HIDDEN, layout="NTC", input_size=1)
                self.head = gluon.nn.Dense(1, in_units=SEQUENCE_HIDDEN)

        def hybrid_forward(self, F: Any, x: Any) -> Any:
            return self.head(F.squeeze(F.slice_axis(self.lstm(x), axis=1, begin=-1, end=None), axis=1))

    net = Forecaster()
    net.initialize()
    net.hybridize(static_alloc=True)
    loss_fn = gluon.loss.L2Loss(weight=2.0)  # the mean squared error, per example
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": SEQUENCE_LR}, kvstore=None)
    Xn, yn = nd.array(X), nd.array(y)

    def run() -> None:
        for batch in batches:
            idx = nd.array(batch, dtype="int64")
            with autograd.record():
                loss = loss_fn(net(nd.take(Xn, idx)), nd.take(yn, idx))
            loss.backward()
            trainer.step(len(batch))
        nd.waitall()

    return run
