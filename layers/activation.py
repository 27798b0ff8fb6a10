"""Element-wise activations: one table row per function, with its NumPy derivative and each framework's own
version of it; a new activation is a new row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Arrays, Build, Layer, Shape, Translator

LEAKY_SLOPE = 0.01  # torch's default; Keras's LeakyReLU layer defaults to 0.3, keras.activations.leaky_relu to 0.2,
# jax.nn.leaky_relu to 0.01, and Gluon's LeakyReLU has no default: given explicitly to every framework
GELU_TANH = np.sqrt(2.0 / np.pi)


@dataclass(frozen=True)
class Function:
    """An activation: NumPy forward, its derivative from the layer's input `a` and output `z`, and each
    framework's own version of it, made by a function that imports the framework when called (a torch.nn
    module, a Gluon block, a JAX function, a Keras layer of the given dtype)."""

    forward: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    torch: Callable[[], Any]
    gluon: Callable[[], Any] | str  # a text: why Gluon has none
    jax: Callable[[], Any]
    keras: Callable[[str], Any]


def _torch(name: str, **options: Any) -> Callable[[], Any]:
    def make() -> Any:
        from torch import nn

        return getattr(nn, name)(**options)
    return make


def _gluon(name: str, **options: Any) -> Callable[[], Any]:
    def make() -> Any:
        from mxnet import gluon

        return getattr(gluon.nn, name)(**options) if name[0].isupper() else gluon.nn.Activation(name)
    return make


def _jax(name: str, **options: Any) -> Callable[[], Any]:
    def make() -> Any:
        import functools

        import jax
        import jax.numpy as jnp

        found = getattr(jnp, name[4:]) if name.startswith("jnp.") else getattr(jax.nn, name)
        return functools.partial(found, **options) if options else found
    return make


def _keras(name: str, **options: Any) -> Callable[[str], Any]:
    def make(dtype: str) -> Any:
        import functools

        import keras

        function = getattr(keras.activations, name)
        return keras.layers.Activation(functools.partial(function, **options) if options else function, dtype=dtype)
    return make


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * a))  # no overflow for large |a|


def _gelu(a: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * a * (1.0 + erf(a / np.sqrt(2.0)))


def _gelu_derivative(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * (1.0 + erf(a / np.sqrt(2.0))) + a * np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)


def _gelu_tanh(a: np.ndarray) -> np.ndarray:
    return 0.5 * a * (1.0 + np.tanh(GELU_TANH * (a + 0.044715 * a**3)))


def _gelu_tanh_derivative(a: np.ndarray, z: np.ndarray) -> np.ndarray:
    t = np.tanh(GELU_TANH * (a + 0.044715 * a**3))
    return 0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * GELU_TANH * (1.0 + 3 * 0.044715 * a * a)


FUNCTIONS: dict[str, Function] = {
    "tanh": Function(np.tanh, lambda a, z: 1.0 - z * z, _torch("Tanh"), _gluon("tanh"), _jax("jnp.tanh"),
                     _keras("tanh")),
    "relu": Function(lambda a: np.maximum(a, 0), lambda a, z: (a > 0).astype(a.dtype), _torch("ReLU"),
                     _gluon("relu"), _jax("relu"), _keras("relu")),
    "sigmoid": Function(lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a, z: z * (1.0 - z), _torch("Sigmoid"),
                        _gluon("sigmoid"), _jax("sigmoid"), _keras("sigmoid")),
    # gelu is the exact form, x·Φ(x): torch's nn.GELU() and Keras's default; jax.nn.gelu defaults to the tanh
    # approximation (approximate=True), so Flax models ported from torch compute gelu_tanh unless told
    "gelu": Function(_gelu, _gelu_derivative, _torch("GELU"), _gluon("GELU"), _jax("gelu", approximate=False),
                     _keras("gelu", approximate=False)),
    "gelu_tanh": Function(_gelu_tanh, _gelu_tanh_derivative, _torch("GELU", approximate="tanh"),
                          "Gluon's GELU (LeakyReLU act_type='gelu') is the exact form only, in MXNet 1.9.1",
                          _jax("gelu", approximate=True),
                          _keras("gelu", approximate=True)),
    "leaky_relu": Function(lambda a: np.where(a > 0, a, LEAKY_SLOPE * a),
                           lambda a, z: np.where(a > 0, 1.0, LEAKY_SLOPE).astype(a.dtype),
                           _torch("LeakyReLU", negative_slope=LEAKY_SLOPE), _gluon("LeakyReLU", alpha=LEAKY_SLOPE),
                           _jax("leaky_relu", negative_slope=LEAKY_SLOPE),
                           _keras("leaky_relu", negative_slope=LEAKY_SLOPE)),
    # softplus: torch's nn.Softplus returns x itself where x > threshold = 20 (2.1e-9 below the exact value there)
    "softplus": Function(lambda a: np.logaddexp(0.0, a), lambda a, z: _sigmoid(a), _torch("Softplus"),
                         _gluon("softrelu"), _jax("softplus"), _keras("softplus")),
    "elu": Function(lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0))),
                    lambda a, z: np.where(a > 0, 1.0, z + 1.0).astype(a.dtype), _torch("ELU"), _gluon("ELU"),
                    _jax("elu"), _keras("elu")),
    "silu": Function(lambda a: a * _sigmoid(a), lambda a, z: _sigmoid(a) * (1.0 + a * (1.0 - _sigmoid(a))),
                     _torch("SiLU"), _gluon("Swish"), _jax("silu"), _keras("silu")),
}
ACTIVATIONS = tuple(FUNCTIONS)


def _function(layer: Layer) -> Function:
    assert isinstance(layer, Activation)
    return FUNCTIONS[layer.name]


class TorchActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        return _function(layer).torch()


class GluonActivation(Translator):
    def refuses(self, layer: Layer) -> str | None:
        made = _function(layer).gluon
        return made if isinstance(made, str) else None

    def build(self, layer: Layer, build: Build) -> Any:
        made = _function(layer).gluon
        assert not isinstance(made, str)
        return made()


class JaxActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        return _function(layer).jax()


class KerasActivation(Translator):
    def build(self, layer: Layer, build: Build) -> Any:
        return _function(layer).keras(build.dtype)


@dataclass(frozen=True)
class Activation(Layer):
    """An element-wise function (FUNCTIONS) of the layer's input."""

    name: str

    kind: ClassVar[str] = "activation"
    translators: ClassVar[Mapping[str, type[Translator]]] = {
        "torch": TorchActivation, "mxnet": GluonActivation, "jax": JaxActivation, "tensorflow": KerasActivation}

    def __post_init__(self) -> None:
        if self.name not in FUNCTIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; received: {self.name!r}")

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        from .linear import Linear  # an activation needs parameters around it to be checked

        return [[Linear(3, 4), Activation(name), Linear(4, 1)] for name in FUNCTIONS]  # pre-activations ~ N(0, 1)

    @property
    def label(self) -> str:
        return self.name

    def encode(self) -> Any:
        return self.name  # {"activation": "tanh"}, as workers of earlier releases read it

    @classmethod
    def decode(cls, options: Any) -> Layer:
        return cls(options["name"] if isinstance(options, dict) else options)

    def describe(self) -> str:
        return self.name

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, train: bool) -> tuple[np.ndarray, Any]:
        z = FUNCTIONS[self.name].forward(x)
        return z, (x, z)

    def backward(self, params: Mapping[str, np.ndarray], saved: Any, grad: np.ndarray,
                 need_input_grad: bool) -> tuple[np.ndarray | None, Arrays]:
        a, z = saved
        return grad * FUNCTIONS[self.name].derivative(a, z), {}
