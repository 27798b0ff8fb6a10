"""A torch nn.Module as the port check reads it: leaf modules found by forward hooks, in the order forward calls
them; torch.optim and torch's own losses for training."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..layers import GRU, LSTM, RNN, AvgPool2d, BatchNorm, Conv2d, Embedding, Layer, LayerNorm, Linear, Link, MaxPool2d
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

_SAME = {"weight": Link("weight"), "bias": Link("bias")}
_ACTIVATIONS = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "ELU": "elu", "SiLU": "silu",
                "Softplus": "softplus"}
READS = ("Linear", "Conv2d", "LSTM", "GRU", "RNN",
         "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Embedding", "MaxPool2d", "AvgPool2d",
         "Flatten", "Dropout", "GELU", "LeakyReLU", *_ACTIVATIONS)


def _found(path: str, module: Any, side: str) -> Found | None:
    from torch import nn

    name = type(module).__name__
    layer: Layer
    native_type = f"{type(module).__module__}.{name}"
    if isinstance(module, nn.Linear):
        return Found(path, Linear(module.in_features, module.out_features, module.bias is not None), module,
                     native_type, links={k: v for k, v in _SAME.items() if getattr(module, k) is not None})
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise ValueError(f"model {side}: layer {path!r} ({native_type}) pads with {module.padding_mode!r}; "
                             "check_port reads zero padding only")
        layer = Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, module.padding,
                       module.dilation, module.groups, module.bias is not None)
        return Found(path, layer, module, native_type,
                     links={k: v for k, v in _SAME.items() if getattr(module, k) is not None})
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        if module.momentum is None or not module.affine or not module.track_running_stats:
            raise ValueError(f"model {side}: layer {path!r} ({native_type}) needs momentum set, affine=True and "
                             "track_running_stats=True for check_port to read it")
        layer = BatchNorm(module.num_features, 1.0 - module.momentum, module.eps, unbiased_running_var=True)
        found = Found(path, layer, module, native_type, links=_SAME,
                      state_links={"running_mean": Link("running_mean"), "running_var": Link("running_var")})
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(module, nn.LayerNorm):
        if len(module.normalized_shape) != 1 or (module.elementwise_affine and module.bias is None):
            raise not_readable(side, path, f"{native_type} over {tuple(module.normalized_shape)}", READS)
        layer = LayerNorm(module.normalized_shape[0], module.eps, module.elementwise_affine)
        found = Found(path, layer, module, native_type, links=_SAME if module.elementwise_affine else {})
        found.settings = {**found.settings, "variance": TWO_PASS}
        return found
    if isinstance(module, nn.Embedding):
        return Found(path, Embedding(module.num_embeddings, module.embedding_dim), module, native_type,
                     links={"weight": Link("weight")})
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        if isinstance(module, nn.MaxPool2d):
            if module.dilation not in (1, (1, 1)) or module.return_indices:
                raise not_readable(side, path, f"{native_type} with dilation or indices", READS)
            layer = MaxPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
        else:
            if module.divisor_override is not None:
                raise not_readable(side, path, f"{native_type} with divisor_override", READS)
            layer = AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                              module.count_include_pad)
        return Found(path, layer, module, native_type)
    if isinstance(module, nn.RNNBase):
        return _recurrent(path, module, native_type, side)
    if isinstance(module, nn.GELU):
        return Found(path, None, module, native_type, kind="activation",
                     settings={"function": "gelu_tanh" if module.approximate == "tanh" else "gelu"})
    if isinstance(module, nn.LeakyReLU):
        return Found(path, None, module, native_type, kind="activation",
                     settings={"function": "leaky_relu", "negative_slope": module.negative_slope})
    if name in _ACTIVATIONS:
        return Found(path, None, module, native_type, kind="activation", settings={"function": _ACTIVATIONS[name]})
    if isinstance(module, nn.Flatten):
        return Found(path, None, module, native_type, kind="flatten")
    if isinstance(module, nn.Dropout):
        return Found(path, None, module, native_type, kind="dropout", settings={"rate": module.p})
    if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False)):
        raise not_readable(side, path, native_type, READS)
    return None


def _recurrent(path: str, module: Any, native_type: str, side: str) -> Found:
    kind = {"LSTM": LSTM, "GRU": GRU, "RNN_TANH": RNN}.get(module.mode)
    if kind is None or module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
        raise not_readable(side, path, f"{native_type}(mode={module.mode}, num_layers={module.num_layers}, "
                           f"bidirectional={module.bidirectional}) (one unidirectional layer each)", READS)
    held = getattr(module, "bias_hh_l0", None)
    # a second bias held at zero out of training is no second bias (the suite's bias=input)
    bias = ("none" if not module.bias else
            "input" if held is not None and not held.requires_grad and not held.detach().any() else "two")
    links = {"weight_ih": Link("weight_ih_l0"), "weight_hh": Link("weight_hh_l0")}
    if bias != "none":
        links["bias_ih"] = Link("bias_ih_l0")
    if bias == "two":
        links["bias_hh"] = Link("bias_hh_l0")
    found = Found(path, kind(module.input_size, module.hidden_size, True, bias), module, native_type, links=links,
                  time_major=not module.batch_first)
    found.settings = {**found.settings, **CELL_FUNCTIONS}
    return found


_INITIALISERS = {"linear": "kaiming_uniform(a=√5) weights, U(±1/√fan_in) biases (reset_parameters)",
                 "conv2d": "kaiming_uniform(a=√5) weights, U(±1/√fan_in) biases (reset_parameters)",
                 "lstm": "U(±1/√H) for every weight and bias", "gru": "U(±1/√H) for every weight and bias",
                 "rnn": "U(±1/√H) for every weight and bias", "embedding": "N(0, 1)"}


class TorchModel(NativeModel):
    framework = "torch"
    title = "PyTorch"
    adam_eps = "1e-08, added to √v̂ (torch/optim/adam.py)"

    @classmethod
    def accepts(cls, model: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(model, torch.nn.Module)

    def _watched(self) -> list[tuple[str, Any, Found | None]]:
        leaves = [(path, module) for path, module in self.model.named_modules()
                  if path and not any(True for _ in module.children())]
        leaves = leaves or [(type(self.model).__name__, self.model)]  # a bare layer is its own model
        found = [(path, module, _found(path, module, self.side)) for path, module in leaves]
        for _, _, item in found:
            if item is not None:
                item.initialiser = _INITIALISERS.get(item.kind, "")
        return found

    def _run(self, X: np.ndarray, train: bool, modules: list[Any]) -> tuple[np.ndarray, list[tuple[int, Any, Any]]]:
        import torch

        calls: list[tuple[int, Any, Any]] = []
        seen: set[int] = set()

        def hook(index: int) -> Any:
            def record(module: Any, args: Any, output: Any) -> None:
                if index not in seen and args and isinstance(args[0], torch.Tensor):
                    seen.add(index)
                    calls.append((index, args[0].detach().numpy().copy(), first(output).detach().numpy().copy()))
            return record

        handles = [module.register_forward_hook(hook(index)) for index, module in enumerate(modules)]
        was_training = self.model.training
        try:
            self.model.train(train)
            with torch.no_grad():
                output = self.model(torch.from_numpy(X))
        finally:
            for handle in handles:
                handle.remove()
            self.model.train(was_training)
        return first(output).detach().numpy(), calls

    def _variables(self, module: Any) -> list[tuple[str, Any]]:
        return [*module.named_parameters(), *((name, buffer) for name, buffer in module.named_buffers()
                                              if not name.endswith("num_batches_tracked"))]

    def _set_rate(self, found: Found, rate: float) -> None:
        found.module.p = rate

    def dtype(self) -> str:
        first = next(iter(self.model.parameters()), None)
        return "float32" if first is None else str(first.dtype).removeprefix("torch.")

    def cast(self, dtype: str) -> None:
        import torch

        self.model.to(getattr(torch, dtype))

    def _arrays(self, found: Found, links: Mapping[str, Link]) -> Arrays:
        return {name: link.of(found.module).detach().numpy().copy() for name, link in links.items()}

    def _assign(self, found: Found, links: Mapping[str, Link], values: Arrays) -> None:
        import torch

        with torch.no_grad():
            for name, link in links.items():
                link.of(found.module).copy_(torch.from_numpy(values[name]))

    def train(self, X: np.ndarray, y: np.ndarray, training: Training) -> Trajectory:
        import torch
        from torch import nn

        parameters = list(self.model.parameters())
        if training.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(parameters, lr=training.lr,
                                                                weight_decay=training.weight_decay)
        else:
            momentum = training.momentum if training.optimizer == "momentum" else 0.0
            optimizer = torch.optim.SGD(parameters, lr=training.lr, momentum=momentum,
                                        weight_decay=training.weight_decay)
        loss_fn = nn.MSELoss() if training.loss == "mse" else nn.CrossEntropyLoss()
        target = torch.from_numpy(y)
        if training.loss == "cross-entropy":
            target = target.long()
        inputs = torch.from_numpy(X)
        losses: list[float] = []
        params: list[Arrays] = []
        grads: Arrays = {}
        was_training = self.model.training
        self.model.train()
        try:
            for start, stop in batches(len(X), training):
                optimizer.zero_grad()
                output = first(self.model(inputs[start:stop]))
                if training.loss == "cross-entropy":  # every position an example; an image's classes are its channels
                    classes = output.shape[1] if output.ndim == 4 else output.shape[-1]
                    rows = (output.permute(0, 2, 3, 1) if output.ndim == 4 else output).reshape(-1, classes)
                    loss = loss_fn(rows, target[start:stop].reshape(-1))
                else:
                    loss = loss_fn(output, target[start:stop].reshape(output.shape))
                loss.backward()
                if not grads:
                    grads = self._grads()
                optimizer.step()
                losses.append(loss.item())
                params.append(self.params())
        finally:
            self.model.train(was_training)
        return Trajectory(losses, params, grads)

    def _grads(self) -> Arrays:
        import torch

        def grad(tensor: Any) -> np.ndarray:
            return (tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)).detach().numpy()

        return {f"{item.path}.{name}": canonical(item, name, link, grad(link.of(item.module)))
                for item in self.layers for name, link in item.links.items()}
