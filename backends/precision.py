"""The numerics a run asks for: a dtype (float64, float32, or bfloat16 and float16 held by the framework throughout),
or a mixed precision (parameters in float32, the layers computing in bfloat16 or float16, as each framework's own
mixed-precision machinery does it), and what each framework cannot run of them, read without importing any."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FULL_DTYPES = ("float32", "float64")
LOW_DTYPES = ("bfloat16", "float16")
DTYPES = (*FULL_DTYPES, *LOW_DTYPES)
PRECISIONS = ("mixed-bfloat16", "mixed-float16")
NUMERICS = (*DTYPES, *PRECISIONS)

@dataclass(frozen=True)
class Numerics:
    """How a model's numbers are held and computed."""

    name: str  # float64, float32, bfloat16, float16, mixed-bfloat16, mixed-float16
    arrays: str  # the NumPy dtype of what goes in and out (float32 holds every bfloat16 and float16 value exactly)
    params: str  # the dtype the framework keeps parameters (and optimiser state) in
    compute: str  # the dtype the layers compute in

    @property
    def mixed(self) -> bool:
        return self.params != self.compute

    @property
    def low(self) -> bool:
        return self.compute in LOW_DTYPES

    @property
    def scaled(self) -> bool:
        """Whether training scales the loss: float16's gradients underflow without it."""
        return self.mixed and self.compute == "float16"


def numerics_of(dtype: str, precision: str | None = None) -> Numerics:
    """The numerics of a dtype and an optional mixed precision; ValueError names what is wrong."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; received: {dtype!r}")
    if precision is None:
        return Numerics(dtype, "float32" if dtype in LOW_DTYPES else dtype, dtype, dtype)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} or None; received: {precision!r}")
    if dtype != "float32":
        raise ValueError(f"precision {precision} keeps the parameters in float32: give dtype float32 with it; "
                         f"received dtype {dtype}")
    return Numerics(precision, "float32", "float32", precision.removeprefix("mixed-"))


def numpy_dtype(name: str) -> np.dtype:
    """A dtype by name as NumPy holds it: bfloat16 is ml_dtypes' (what JAX and TensorFlow use), imported only here,
    so that a NumPy-only environment (a worker's) never needs it."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def finfo(dtype: str | np.dtype) -> Any:
    """np.finfo, or ml_dtypes' for bfloat16 (NumPy's does not take it)."""
    if str(dtype) == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(dtype)


def smallest(dtype: str) -> float:
    return float(finfo(dtype).smallest_subnormal)


# The optimisers' ε (optimizers/training.py, torch's) that float16 rounds to 0: √v + ε is then 0 where a gradient
# has been 0, and the update 0/0.
FLOAT16_ZERO_EPSILON = ("adam", "adamw", "rmsprop")


RECURRENT = ("rnn", "gru", "lstm")


def check_fits(name: str, values: np.ndarray, numerics: Numerics, squared: bool = False) -> None:
    """Inputs (or, `squared`, targets whose squared error the loss computes) that the dtype a run computes them in
    cannot hold: bfloat16 and float16 throughout, the layers' dtype where mixed (its losses are float32)."""
    dtype = numerics.compute if not squared else numerics.params
    if not numerics.low or dtype not in LOW_DTYPES or not values.size:
        return
    largest, limit = float(np.max(np.abs(values))), float(finfo(dtype).max)
    limit = limit ** 0.5 if squared else limit
    if largest > limit:
        raise ValueError(f"{name} must fit in {dtype}{' squared' if squared else ''} (largest magnitude {limit:.3g}); "
                         f"received a value of {largest:.3g}: scale the data, or use float32")


def whole_numbers_refused(numerics: Numerics, spec: Sequence[Any], classes: int | None) -> str | None:
    """Why a model's inputs or labels cannot be held in a low dtype throughout: token ids or class indices above
    the whole numbers it holds exactly (bfloat16 256, float16 2048), which it would round to other tokens or
    classes; None where they fit (or the inputs stay float32: mixed)."""
    if not numerics.low or numerics.mixed:
        return None
    exact = 2 ** (int(finfo(numerics.params).nmant) + 1)
    advice = f"{numerics.name} holds whole numbers exactly only up to {exact}: use --precision mixed-{numerics.name}"
    for index, layer in enumerate(spec):
        if getattr(layer, "takes_ids", False) and layer.vocabulary - 1 > exact:
            return f"layer {index} {layer.describe()} takes token ids up to {layer.vocabulary - 1}; {advice}"
    if classes is not None and classes - 1 > exact:
        return f"the labels are class indices up to {classes - 1}; {advice}"
    return None


def refuses(framework: str, numerics: Numerics, optimizer: str, runs: tuple[str, ...] = NUMERICS,
            spec: Sequence[Any] = (), classes: int | None = None) -> str | None:
    """Why a framework (whose backend `runs` these numerics) cannot run these, with this optimiser, a model of
    these layers and, for a classification, this many classes: a finding with its source, or None."""
    if numerics.name in FULL_DTYPES:
        return None
    kinds = {layer.kind for layer in spec}
    if framework == "numpy":
        return ("the NumPy backend computes by hand in float32 and float64 only; at "
                f"{numerics.name} it trains beside the others as their float64 shadow")
    if framework == "mxnet":
        return _mxnet_refuses(numerics)
    if numerics.name not in runs:
        return f"it runs {', '.join(runs)}"
    recurrent = sorted(set(kinds) & set(RECURRENT))
    if recurrent and not numerics.mixed and framework in ("jax", "tensorflow"):
        where = ("Flax's cells draw it with jax.nn.initializers.orthogonal, whose QR (jax/_src/random.py:2288) has no "
                 f"{numerics.name} LAPACK kernel (jaxlib/lapack.py:62: 'Unsupported dtype {numerics.name}')"
                 if framework == "jax" else
                 "Keras's Orthogonal initializer calls tf.linalg.qr (keras/src/backend/tensorflow/linalg.py:179), "
                 "whose Qr op takes double, float, half and complex only")
        if framework == "jax" or numerics.name == "bfloat16":
            return f"its {recurrent[0]} layer's recurrent kernel cannot be drawn in {numerics.name}: {where}"
    if "lstm" in kinds and framework == "torch" and numerics.name == "mixed-float16":
        return ("torch's LSTM under autocast float16 on the CPU fails in oneDNN (torch/nn/modules/rnn.py:1164, "
                "_VF.lstm: 'could not create a primitive descriptor for the LSTM forward propagation primitive')")
    if framework == "tensorflow" and numerics.name == "bfloat16" and optimizer in ("adam", "adamw"):
        return ("Keras's Adam casts β₂ = 0.999 to the variables' dtype (keras/src/optimizers/adam.py:110-111), which "
                "bfloat16 holds as 1: 1 − β₂ᵗ is 0, and so is every step's rate lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ); use "
                "--precision mixed-bfloat16, which keeps the optimiser in float32")
    if numerics.name == "float16" and optimizer in FLOAT16_ZERO_EPSILON:
        return (f"{optimizer}'s ε = 1e-8 is 0 in float16 (its smallest value is {smallest('float16'):.3g}): "
                "√v + ε is then 0 where a gradient has been 0; use --precision mixed-float16, which keeps the "
                "optimiser in float32, or --dtype bfloat16")
    return whole_numbers_refused(numerics, spec, classes)


def _mxnet_refuses(numerics: Numerics) -> str:
    if numerics.name == "float16" or numerics.name == "mixed-float16":
        return ("MXNet 1.9.1's CPU build has no float16 matrix product: FullyConnected fails with 'float16 fully "
                "connected layer is currently only supported by CuDNN version' (src/operator/nn/"
                "fully_connected-inl.h:457)")
    if numerics.name == "bfloat16":
        return ("Gluon's blocks take NumPy's dtypes, and MXNet 1.9.1's bfloat16 is a structured uint16 for AMP alone "
                "(mxnet/contrib/amp/amp.py:46): Dense(dtype='bfloat16') fails with 'data type bfloat16 not "
                "understood'")
    return ("MXNet 1.9.1's AMP is switched on for the whole process by mxnet.contrib.amp.init(), which wraps the "
            "operators of every model built after it (mxnet/contrib/amp/amp.py:282-320) and cannot be undone: one "
            "backend cannot use it without changing the others")
