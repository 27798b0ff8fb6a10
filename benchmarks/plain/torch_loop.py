"""The plain PyTorch loop, the yardstick of the suite's torch backend, written by hand;
from the suite it takes only the spec's layer type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backend_compare.backends import Linear

from . import CNN_CONVS, CNN_LINEAR, CNN_LR, LR, SEQUENCE_HIDDEN, SEQUENCE_LR


def plain_loop(spec: Any, params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
               batches: list[np.ndarray], compiled: bool = False) -> Callable[[], None]:
    """nn.Sequential, MSELoss and SGD; `compiled` wraps the loss's forward in torch.compile."""
    import torch
    from torch import nn

    layers = [nn.Linear(layer.in_features, layer.out_features) if isinstance(layer, Linear) else nn.Tanh()
              for layer in spec]
    model = nn.Sequential(*layers)
    model.load_state_dict({name: torch.from_numpy(value.astype(np.float32)) for name, value in params.items()})
    optimizer, mse = torch.optim.SGD(model.parameters(), lr=LR), nn.MSELoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def model_loss(xb: Any, yb: Any) -> Any:
        return mse(model(xb), yb)

    forward = torch.compile(model_loss) if compiled else model_loss

    def run() -> None:
        for batch in batches:
            idx = torch.from_numpy(batch)
            optimizer.zero_grad()
            loss = forward(Xt[idx], yt[idx])
            loss.backward()
            optimizer.step()

    return run


def cnn_loop(params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray,
              batches: list[np.ndarray]) -> Callable[[], None]:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 10))
    for native, index in ((0, CNN_CONVS[0]), (3, CNN_CONVS[1]), (7, CNN_LINEAR)):
        model[native].weight.data = torch.from_numpy(params[f"{index}.weight"].astype(np.float32))
        model[native].bias.data = torch.from_numpy(params[f"{index}.bias"].astype(np.float32))
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=CNN_LR), nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))

    def run() -> None:
        for batch in batches:
            idx = torch.from_numpy(batch)
            optimizer.zero_grad()
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            optimizer.step()

    return run


def lstm_loop(X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Callable[[], None]:
    import torch
    from torch import nn

    class Forecaster(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(1, SEQUENCE_HIDDEN, batch_first=True), nn.Linear(SEQUENCE_HIDDEN, 1)

        def forward(self, x: Any) -> Any:
            return self.head(self.lstm(x)[0][:, -1])

    model = Forecaster()
    optimizer, mse = torch.optim.SGD(model.parameters(), lr=SEQUENCE_LR), nn.MSELoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def run() -> None:
        for batch in batches:
            idx = torch.from_numpy(batch)
            optimizer.zero_grad()
            mse(model(Xt[idx]), yt[idx]).backward()
            optimizer.step()

    return run
