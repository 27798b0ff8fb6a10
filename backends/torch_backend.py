"""PyTorch backend: torch.nn modules, torch losses, torch.optim, autograd."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..layers import Build, Link, built
from .base import Backend, Params
from .numerics import on
from .precision import NUMERICS

try:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
except ImportError as err:
    raise ImportError(f"the torch backend needs PyTorch ({err}); install it with: pip install torch==2.13.0") from err
from ..optimizers.torch_optimizer import TorchOptimizer

# torch.compile keys its compiled graphs by code object: every model here shares one forward, and each
# new dtype, loss or architecture is a recompile of it. Past torch's default limit of 8 it would quietly
# run eagerly instead; allow more, and fail loudly rather than report eager numbers as compiled ones.
_RECOMPILE_LIMIT = 64


def _training_forward(net: nn.Sequential, X: torch.Tensor, keeps: dict[int, torch.Tensor]) -> torch.Tensor:
    """The network's output in training, each dropout module given its mask (by position)."""
    if not keeps:
        return net(X)
    out = X
    for index, module in enumerate(net):
        out = module(out, keeps[index]) if index in keeps else module(out)
    return out


class _NetWithLoss(nn.Module):
    """The batch-mean loss of the network's output, as one module: what compiled mode compiles."""

    def __init__(self, net: nn.Sequential, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.net, self.loss = net, loss

    def forward(self, X: torch.Tensor, y: torch.Tensor, keeps: dict[int, torch.Tensor]) -> torch.Tensor:
        return self.loss(_training_forward(self.net, X, keeps), y)


def _grad(param: torch.Tensor) -> torch.Tensor:
    return param.grad if param.grad is not None else torch.zeros_like(param)  # None: not on the loss's path


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's values as NumPy holds them: bfloat16 (which NumPy lacks) as the float32 that holds it exactly."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


class TorchBackend(Backend):
    name = "torch"
    framework = "torch"  # the key of its translators in each layer module
    replay = True
    native_init_description = "nn.Linear.reset_parameters: kaiming_uniform(a=√5) weights, U(±1/√fan_in) biases"
    modes = ("eager", "compiled")
    keeps_state = True  # buffers (BatchNorm's running statistics), updated by the modules in train mode
    runs = NUMERICS  # bfloat16 and float16 throughout, or mixed: torch.autocast, and GradScaler for float16

    def _build(self) -> None:
        if self.deterministic:  # process-wide in torch, as its docs set it (torch.use_deterministic_algorithms)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what cuBLAS needs for it (torch's notes)
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        self._params_dtype, self._device = getattr(torch, self.numerics.params), torch.device(self.device)
        build = Build(self.numerics.params)
        self._translators = [self.translator(layer) for layer in self.spec]
        self._model = nn.Sequential(*built(self._translators, self.spec, build)).to(self._device, self._params_dtype)
        # Each canonical parameter with the tensor that holds it and the layout it is held in.
        self._links: dict[str, tuple[torch.Tensor, Link]] = {
            f"{index}.{name}": (link.of(module), link)
            for index, (module, translator, layer) in enumerate(zip(self._model, self._translators, self.spec,
                                                                    strict=True))
            for name, link in translator.links_for(layer).items() if name in layer.params()}
        self._buffers = {f"{index}.{name}": (link.of(module), link)
                         for index, (module, translator, layer) in enumerate(zip(self._model, self._translators,
                                                                                 self.spec, strict=True))
                         for name, link in translator.state_links_for(layer).items() if name in layer.state()}
        mse = nn.MSELoss()  # mean over every element
        # log_softmax, then the mean over the batch; label smoothing: ε/K to every class (the label's too)
        weight = (None if self.class_weights is None else
                  torch.tensor(self.class_weights, dtype=self._params_dtype, device=self._device))
        cross_entropy = nn.CrossEntropyLoss(weight=weight, label_smoothing=self.label_smoothing)
        losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
            "mse": mse,
            "half-mse": lambda output, target: 0.5 * mse(output, target),
            "huber": nn.HuberLoss(delta=self.huber_delta),
            "l1": nn.L1Loss(),  # the mean over every element
            "bce-with-logits": nn.BCEWithLogitsLoss(),  # sigmoid inside, the mean over every element
            # Class indices must be int64 and one-dimensional: a float target of the logits' shape would be
            # taken for class probabilities instead.
            "cross-entropy": lambda output, target: cross_entropy(output, target.reshape(-1).long()),
        }
        self._loss_fn = losses[self.loss_name]
        self._net_loss: Callable[[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]], torch.Tensor] = (
            lambda X, y, keeps: self._loss_fn(_training_forward(self._model, X, keeps), y))  # eager: no module call
        # mixed: torch's autocast on the CPU decides each op's dtype (torch/amp/autocast_mode.py; its lists in
        # aten/src/ATen/autocast_mode.cpp): matrix products and convolutions low, losses and softmax in float32
        self._autocast = torch.autocast(self.device, dtype=getattr(torch, self.numerics.compute),
                                        enabled=self.numerics.mixed)
        if self.mode == "compiled":  # forward and loss through Inductor, backward through AOTAutograd
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _RECOMPILE_LIMIT)
            torch._dynamo.config.fail_on_recompile_limit_hit = True
            self._net_loss = torch.compile(_NetWithLoss(self._model, self._loss_fn))

    def math_modes(self) -> dict[str, str]:
        # TF32: torch's matmul default is off (get_float32_matmul_precision "highest"), cuDNN's convolutions' on
        # (README: Reduced precision and GPUs, the switch each reads)
        return {"device": self.device, "TF32 matmul": on(torch.get_float32_matmul_precision() != "highest"),
                "TF32 convolution": on(torch.backends.cudnn.allow_tf32),
                "deterministic": on(torch.are_deterministic_algorithms_enabled()),
                "autotune": on(torch.backends.cudnn.benchmark)}

    def _get_params(self) -> Params:
        return {name: link.canonical_array(_numpy(param)) for name, (param, link) in self._links.items()}

    def _set_params(self, params: Params) -> None:
        with torch.no_grad():
            for name, value in params.items():
                param, link = self._links[name]
                param.copy_(torch.from_numpy(link.native_array(value)))

    def _get_state(self) -> Params:
        return {name: link.canonical_array(_numpy(buffer)) for name, (buffer, link) in self._buffers.items()}

    def _set_state(self, state: Params) -> None:
        with torch.no_grad():
            for name, value in state.items():
                buffer, link = self._buffers[name]
                buffer.copy_(torch.from_numpy(link.native_array(value)))

    def _native_init(self, seed: int) -> None:
        with torch.random.fork_rng():  # seeded, without moving the caller's global torch RNG
            torch.manual_seed(seed)
            for module, translator in zip(self._model, self._translators, strict=True):
                translator.native_init(module, None, self.numerics.params)

    def _reset_optimizer(self) -> None:
        self._optimizer = TorchOptimizer(self.training, list(self._model.parameters()),
                                         scaler=self.device if self.numerics.scaled else None)

    def _penalty(self) -> float:
        return self._optimizer.penalty()

    def _native_batches(self, n_rows: int, batch_size: int, epochs: int, seed: int,
                        shuffle: bool) -> Iterator[list[np.ndarray]]:
        rows = TensorDataset(torch.arange(n_rows))
        loader = DataLoader(rows, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed))
        for _ in range(epochs):
            yield [indices.numpy() for (indices,) in loader]

    def _computed_mask(self, mask: torch.Tensor) -> torch.Tensor:
        return mask.to(self._device, getattr(torch, self.numerics.compute))

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """An input or target as the model takes it: in the parameters' dtype (autocast casts it where mixed)."""
        return torch.from_numpy(array).to(self._device, self._params_dtype)

    def _load(self, X: np.ndarray, y: np.ndarray) -> None:
        self._X, self._y = self._tensor(X), self._tensor(y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        self._model.eval()
        with torch.no_grad(), self._autocast:
            return _numpy(self._model(self._tensor(X)))

    def _loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return self._mean_loss(self._tensor(X), self._tensor(y))

    def _loss_loaded(self) -> float:
        return self._mean_loss(self._X, self._y)

    def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        self._model.train()
        self._optimizer.zero_grad()
        with self._autocast:
            loss = self._net_loss(self._tensor(X), self._tensor(y), self._keeps(len(X)))
        loss.backward()
        return loss.item(), {name: link.canonical_array(_numpy(_grad(param)))
                             for name, (param, link) in self._links.items()}

    def _train(self, order: np.ndarray | None, bounds: list[tuple[int, int]]) -> list[float]:
        X, y = self._X, self._y
        if order is not None:
            index = torch.from_numpy(order).to(self._device)
            X, y = X.index_select(0, index), y.index_select(0, index)  # batches are then views
        losses = []
        self._model.train()  # batch statistics, running ones updated: torch's train mode
        for start, stop in bounds:
            self._optimizer.zero_grad()
            with self._autocast:
                loss = self._net_loss(X[start:stop], y[start:stop], self._keeps(stop - start, advance=True))
            self._optimizer.backward(loss)
            self._optimizer.step()
            losses.append(loss.item())  # on the CPU a scalar read, cheaper than stacking tensors
            scale = self._optimizer.loss_scale()
            if scale is not None:
                self._scales.append(scale)
        return losses

    # ---- replay hooks (compare.py explain) ----

    def _activations(self, X: np.ndarray) -> list[np.ndarray]:
        found, out = [], self._tensor(X)
        keeps = self._keeps(len(X))
        self._model.train()  # the activations of a training step
        self._computed_in = []
        with torch.no_grad(), self._autocast:
            for index, module in enumerate(self._model):
                out = module(out, keeps[index]) if index in keeps else module(out)
                self._computed_in.append(str(out.dtype).removeprefix("torch."))
                found.append(_numpy(out).copy())
        return found

    def _optimizer_state(self) -> dict[str, Any]:
        found: dict[str, Any] = {kind: {} for kind in self.training.state_kinds()}
        for name, (param, link) in self._links.items():
            for kind, value in self._optimizer.state(param).items():
                found[kind][name] = link.canonical_array(_numpy(value))
        return found

    def _set_optimizer_state(self, state: dict[str, Any]) -> None:
        self._optimizer.restart_at(state["step"], {
            param: {kind: self._tensor(np.ascontiguousarray(link.native_array(state[kind][name])).copy())
                    for kind in self.training.state_kinds()}
            for name, (param, link) in self._links.items()})

    def _mean_loss(self, X: torch.Tensor, y: torch.Tensor) -> float:
        # Evaluations run eagerly in both modes: compiling one more graph per evaluated shape would cost
        # seconds and measure nothing the training step does not. Evaluation: running statistics.
        self._model.eval()
        with torch.no_grad(), self._autocast:
            return self._loss_fn(self._model(X), y).item()
