"""A model written as a short text, as --layers takes it:

    conv2d(8, 3, padding=same), relu, maxpool(2), flatten, linear(10)

Layers are separated by commas; a layer without options is its name alone. Each layer gives only what the
layer before it does not fix: its output size, never its input (that is the previous layer's output, the
data's shape for the first). Values are integers, decimals, words (same, valid, unbiased) and tuples of
integers ((2, 3): one per spatial axis); True and False for flags.

    linear(OUT[, bias=False])
    embedding(VOCABULARY, WIDTH)   first, on token ids (integers 0…VOCABULARY−1): (steps,) → (steps, WIDTH)
    conv1d(OUT, KERNEL[, stride=S][, padding=P|same|valid][, dilation=D][, groups=G][, bias=False])
    conv2d(…the same…)
    maxpool(KERNEL[, stride=S][, padding=P][, ceil_mode=True])    avgpool(…the same…[, count_include_pad=False])
    batchnorm[(momentum=0.9, eps=1e-5, running_var=biased|unbiased)]   (per feature, or per channel of images)
    layernorm[(eps=1e-5, affine=False)]   over the last axis (the features; a sequence's, per step)
    dropout(RATE)       RATE in [0, 1); the masks are drawn from the run's seed, the same in every backend
    rnn(H[, sequences=True][, bias=two|input|none])   gru(…the same…)   lstm(…the same…)
                        over (steps, features) examples; the last step's output, or every step's (sequences)
    flatten
    add(LAYER, …)       x + f(x), f the layers inside, which must give back x's shape (a residual block)
    tanh, relu, sigmoid, gelu, gelu_tanh, leaky_relu, softplus, elu, silu

Positions count from 1 in the text; in the model they are layer indices after layer 0, the input.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from .activation import FUNCTIONS, Activation
from .base import Layer, Shape
from .batchnorm import BatchNorm
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .layernorm import LayerNorm
from .linear import Linear
from .pool import AvgPool2d, MaxPool2d
from .recurrent import GRU, LSTM, RNN, Recurrent
from .residual import Residual
from .shape import Flatten, Input

Value = int | float | str | bool | tuple[int, ...]


def _value(node: ast.expr) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, int | float) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Tuple) and all(isinstance(item, ast.Constant) and type(item.value) is int
                                           for item in node.elts):
        return tuple(item.value for item in node.elts)  # type: ignore[attr-defined]
    raise ValueError(f"{ast.unparse(node)!r} is not a number, a word or a tuple of integers")


def _parse(item: str) -> tuple[str, list[Value], dict[str, Value]]:
    """One layer's text as (name, positional values, keyword values); add's values are its layers' texts."""
    try:
        tree = ast.parse(item.strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError):  # too deep a nesting is not a layer either
        raise ValueError("expected NAME or NAME(VALUE, …, OPTION=VALUE)") from None
    if isinstance(tree, ast.Name):
        return tree.id, [], {}
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)):
        raise ValueError("expected NAME or NAME(VALUE, …, OPTION=VALUE)")
    if any(keyword.arg is None for keyword in tree.keywords):
        raise ValueError("expected NAME or NAME(VALUE, …, OPTION=VALUE)")
    if tree.func.id == "add":
        return "add", [ast.unparse(arg) for arg in tree.args], {str(k.arg): _value(k.value) for k in tree.keywords}
    return (tree.func.id, [_value(arg) for arg in tree.args],
            {str(keyword.arg): _value(keyword.value) for keyword in tree.keywords})


def _split(text: str) -> list[str]:
    """The text at its commas outside parentheses."""
    items, depth, start = [], 0, 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ValueError(f"layers: a ')' without its '(' at character {position + 1} of {text!r}")
        if char == "," and depth == 0:
            items.append(text[start:position])
            start = position + 1
    if depth:
        raise ValueError(f"layers: a '(' without its ')' in {text!r}")
    return [*items, text[start:]]


def _channels(shape: Shape, rank: int, name: str) -> int:
    if len(shape) != rank + 1:
        layout = "(channels, length)" if rank == 1 else "(channels, height, width)"
        raise ValueError(f"{name} takes inputs of shape {layout}; it follows an output of shape {shape}")
    return shape[0]


def _linear(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
    if len(shape) != 1:
        raise ValueError(f"linear takes inputs of shape (features,); it follows an output of shape {shape}: "
                         "put flatten before it")
    return Linear(shape[0], *args, **options)


def _conv(kind: type[Conv1d] | type[Conv2d]) -> Callable[[Shape, list[Any], dict[str, Any]], Layer]:
    def make(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
        return kind(_channels(shape, kind.rank, kind.kind), *args, **options)
    return make


def _batchnorm(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
    if "unbiased_running_var" in options:
        raise ValueError("write the running variance as running_var=biased or running_var=unbiased")
    running = options.pop("running_var", "biased")
    if running not in ("biased", "unbiased"):
        raise ValueError(f"running_var must be biased or unbiased; received: {running!r}")
    return BatchNorm(shape[0], *args, **{**options, "unbiased_running_var": running == "unbiased"})


def _layernorm(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
    if args or not shape:
        raise ValueError("layernorm takes only eps=E and affine=False, by name")
    return LayerNorm(shape[-1], **options)


def _recurrent(kind: type[Recurrent]) -> Callable[[Shape, list[Any], dict[str, Any]], Layer]:
    def make(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
        if len(shape) != 2:
            raise ValueError(f"{kind.kind} takes sequences of shape (steps, features); it follows an output of shape "
                             f"{shape}")
        return kind(shape[1], *args, **options)
    return make


def _dropout(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
    if options or len(args) != 1:
        raise ValueError("dropout takes its rate alone (its masks follow the run's seed)")
    return Dropout(args[0])


def _no_options(kind: type[Layer]) -> Callable[[Shape, list[Any], dict[str, Any]], Layer]:
    def make(shape: Shape, args: list[Any], options: dict[str, Any]) -> Layer:
        if args or options:
            raise ValueError(f"{kind.kind} takes no options")
        return kind()
    return make


MAKERS: dict[str, Callable[[Shape, list[Any], dict[str, Any]], Layer]] = {
    "linear": _linear, "conv1d": _conv(Conv1d), "conv2d": _conv(Conv2d),
    "maxpool": lambda shape, args, options: MaxPool2d(*args, **options),
    "avgpool": lambda shape, args, options: AvgPool2d(*args, **options),
    "embedding": lambda shape, args, options: Embedding(*args, **options),
    "batchnorm": _batchnorm, "layernorm": _layernorm, "dropout": _dropout,
    "rnn": _recurrent(RNN), "gru": _recurrent(GRU), "lstm": _recurrent(LSTM), "flatten": _no_options(Flatten),
}
NAMES = (*MAKERS, "add", *FUNCTIONS)
USAGE = {"linear": "linear(OUT[, bias=False])",
         "conv1d": "conv1d(OUT, KERNEL[, stride=S][, padding=P|same|valid][, dilation=D][, groups=G][, bias=False])",
         "conv2d": "conv2d(OUT, KERNEL[, stride=S][, padding=P|same|valid][, dilation=D][, groups=G][, bias=False])",
         "maxpool": "maxpool(KERNEL[, stride=S][, padding=P][, ceil_mode=True])",
         "avgpool": "avgpool(KERNEL[, stride=S][, padding=P][, ceil_mode=True][, count_include_pad=False])",
         "batchnorm": "batchnorm[(momentum=M, eps=E, running_var=biased|unbiased)]",
         "layernorm": "layernorm[(eps=E, affine=False)]",
         "embedding": "embedding(VOCABULARY, WIDTH)",
         "dropout": "dropout(RATE), RATE in [0, 1)",
         **{kind: f"{kind}(H[, sequences=True][, bias=two|input|none])" for kind in ("rnn", "gru", "lstm")},
         "add": "add(LAYER, …): x + the layers' output, which must have x's shape"}


def parse_layers(text: str, shape: Shape) -> list[Layer]:
    """The model `text` describes for examples of `shape`, Input((shape)) first; a ValueError names the layer
    by its position and text, and says what was wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"layers must be a text such as 'linear(32), relu, linear(10)'; received: {text!r}")
    return [Input(tuple(shape)), *_stack(_split(text), tuple(shape), "layer")]


def _stack(items: list[str], shape: Shape, what: str) -> list[Layer]:
    """The layers of `items` in turn, each fed the one before's output (the first `shape`)."""
    layers: list[Layer] = []
    current = shape
    for position, item in enumerate(items, start=1):
        where = f"{what} {position} {_shown(item)}"
        name = ""
        try:
            name, args, options = _parse(item)
            if name in FUNCTIONS:
                if args or options:
                    raise ValueError(f"the activation {name} takes no options")
                layer: Layer = Activation(name)
            elif name == "add":
                if options or not args:
                    raise ValueError("add takes the layers of its branch, e.g. add(conv2d(8, 3, padding=same), relu)")
                layer = Residual(tuple(_stack([str(arg) for arg in args], current, f"{where}: branch layer")))
            elif name in MAKERS:
                layer = MAKERS[name](current, args, options)
            else:
                raise ValueError(f"unknown layer; the layers are: {', '.join(NAMES)}")
            current = layer.output_shape(current)
        except TypeError as err:  # a keyword or a count of values the layer does not take
            reason = str(err).split("()", 1)[-1].strip() or str(err)
            if "positional argument" in reason:
                reason = "too many values or too few"
            raise ValueError(f"{where}: {reason}; write it as {USAGE.get(name, name)}") from None
        except ValueError as err:
            message = str(err)
            raise ValueError(message if message.startswith(where) else f"{where}: {_without_layer_name(message)}"
                             ) from None
        layers.append(layer)
    return layers


SHOWN = 60  # characters of a layer's text a message repeats


def _shown(item: str) -> str:
    """A layer's text as a message repeats it: printable, at most SHOWN characters."""
    text = "".join(char if char.isprintable() else "?" for char in item.strip()) or "(empty)"
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"


def _without_layer_name(message: str) -> str:
    """A layer's own message starts with its description, which the position already gives."""
    first, _, rest = message.partition(": ")
    return rest if rest and "(" in first and " " not in first.split("(", 1)[0] else message

