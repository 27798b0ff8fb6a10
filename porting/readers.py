"""Which framework a model is: each reader says whether it accepts it, without importing a framework."""

from __future__ import annotations

from typing import Any

from .native import NativeModel


def readers() -> list[type[NativeModel]]:
    from .jax_model import FlaxModel
    from .mxnet_model import GluonModel
    from .tensorflow_model import KerasModel
    from .torch_model import TorchModel

    return [TorchModel, GluonModel, FlaxModel, KerasModel]


def opened(model: Any, side: str) -> NativeModel:
    """The reader of `model`'s framework (a reader given is used as it is: a model in a worker process); a TypeError
    names the side and what it accepts."""
    if isinstance(model, NativeModel):
        model.side = side
        return model
    for reader in readers():
        if reader.accepts(model):
            return reader(model, side)
    raise TypeError(f"model {side}: a {type(model).__module__}.{type(model).__name__} is not a model check_port "
                    "reads: a torch nn.Module, a Gluon Block, a Keras model or layer, or a Flax NNX Module")
