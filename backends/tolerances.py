"""The tolerance table keyed by dtype (rtol and atol always together) and the named allowances: framework
differences that cannot be aligned, measured and bounded. Reports, explain and the tests all read them here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import RowName

TOLERANCES = {
    "float32": {"rtol": 1e-4, "atol": 1e-6},
    "float64": {"rtol": 1e-9, "atol": 1e-12},
    # Measured by benchmarks/precision.py (benchmarks/PRECISION.md): the largest difference between torch, JAX and
    # Keras on the suite's tasks at their defaults, where rounding is not amplified (SGD; Adam where its runs stay
    # near the float64 shadow), with a margin of about 2: each framework rounds its own way (its accumulation,
    # its policy's lists). Where Adam amplifies the rounding (the CNN, the sequence task: O(1) from the shadow),
    # a pair beyond these is held against the run's noise, the closest backend's distance from the shadow.
    "bfloat16": {"rtol": 2e-1, "atol": 2e-3},
    "float16": {"rtol": 3e-2, "atol": 3e-4},
    "mixed-bfloat16": {"rtol": 1e-1, "atol": 1e-3},
    "mixed-float16": {"rtol": 1e-1, "atol": 1e-3},
}


@dataclass(frozen=True)
class Allowance:
    """A known difference between one backend and the others that no setting removes: where it comes
    from, when it applies, and the tolerance that bounds it (measured with margin)."""

    name: str
    backend: str
    dtype: str
    rtol: float
    atol: float
    cause: str
    optimizers: tuple[str, ...] = ()  # the optimisers it concerns; () for every one
    layers: tuple[str, ...] = ()  # the layers (Layer.label: an activation's name) it concerns; () for every model


ALLOWANCES = {allowance.name: allowance for allowance in (
    Allowance("mxnet-float32-hyperparameters", "mxnet", "float64", rtol=1e-6, atol=1e-12,
              cause="MXNet's optimiser ops take lr, wd, momentum and rescale_grad (1/batch_size) as 32-bit C "
                    "floats even for float64 weights (struct SGDParam { float lr; ... }), so a learning rate "
                    "or batch size not exact in 32 bits moves its float64 trajectory by ~1e-7 relative "
                    "(measured 1.4e-7 at lr 0.03, batch 10); its BatchNorm op takes the running statistics' "
                    "momentum as a float too (src/operator/nn/batch_norm-inl.h, struct BatchNormParam { double "
                    "eps; float momentum; }): 0.9 becomes 0.89999998, measured 2.8e-8 on a running mean after 4 "
                    "steps at momentum 0.8, 1e-9 at 0.5 (exact in float); a schedule's rate at each update and a "
                    "--clip value limit reach the op as floats too (Optimizer._get_lr, clip_gradient)"),
    Allowance("mxnet-adam-beta2", "mxnet", "float64", rtol=1e-3, atol=1e-5,
              cause="MXNet's adam_update takes beta2 as a 32-bit float: 0.999 becomes 0.99900001287, so "
                    "(1 - beta2) is 1.3e-5 relative too small while its bias correction uses the exact "
                    "0.999; measured up to 1.8e-4 absolute, 8.8e-4 relative on values below 1e-5",
              optimizers=("adam",)),
    Allowance("keras-adam-float32-beta2", "tensorflow", "float32", rtol=1e-3, atol=1e-5,
              cause="Keras's Adam computes its bias correction 1 - beta2**t in the weights' dtype, so a float32 "
                    "model's uses beta2 = 0.99900001287, 1.3e-5 relative too far from 1 at first; MXNet's "
                    "adam_update rounds beta2 the other way (in the moment update, its bias correction exact). "
                    "Each stays within float32's tolerance of numpy, torch and jax (at most 0.60 of it), but "
                    "between the two the errors add: measured 1.03 of the tolerance on the mlp with mse, "
                    "1.1e-5 absolute, 5.9e-4 relative on a parameter near 0.014; on the iris MLP classifier "
                    "(cross-entropy) it reaches 1.44-1.50 of the tolerance against numpy, torch and jax alone, "
                    "3.0 against mxnet (6.0e-6 absolute); its AdamW the same (1.2 of the tolerance, measured)",
              optimizers=("adam", "adamw")),
    Allowance("mxnet-adam-float32-beta2", "mxnet", "float32", rtol=1e-3, atol=1e-5,
              cause="MXNet's adam_update rounds beta2 to float32 (0.99900001287) in the second-moment update while "
                    "its bias correction uses the exact 0.999 (the float64 allowance mxnet-adam-beta2, at float32): "
                    "within float32's tolerance on the regressions, but on the iris MLP classifier (cross-entropy, "
                    "gradients of a few 1e-3) it reaches 1.54-1.60 of it against numpy, torch and jax (3.1e-6 "
                    "absolute on a bias near 0.0096)", optimizers=("adam",)),
    *(Allowance(f"{backend}-rmsprop{'-float32' if dtype == 'float32' else ''}-epsilon-in-root", framework, dtype,
                rtol=1e-2, atol=1e-9 if dtype == "float64" else 1e-6, optimizers=("rmsprop",),
                cause=f"{who} adds RMSprop's ε inside the square root, √(v + ε) ({source}), where torch adds it "
                      "outside, √v + ε (torch/optim/rmsprop.py:325-330, avg = square_avg.sqrt(); avg.add_(eps)); "
                      "no ε makes the two one, so it is given ε² = 1e-16 inside, nearest torch's 1e-8 outside. The "
                      "two denominators differ by up to ε/√v relative, most where a gradient stays near 0 (√v near "
                      f"ε): measured up to 6.3e-3 relative on a parameter of the MLP with huber ({dtype}), 1e-4 "
                      "on the others")
      for backend, framework, who, source in (
          ("keras", "tensorflow", "Keras", "keras/src/optimizers/rmsprop.py:143-146, ops.sqrt(velocity + "
                                           "epsilon)"),
          ("mxnet", "mxnet", "MXNet's rmsprop_update", "mxnet/ndarray/gen_op.py:9968, RMS[g] = √(E[g²] + ε)"))
      for dtype in ("float64", "float32")),
    Allowance("tensorflow-gelu-float32-constant", "tensorflow", "float64", rtol=1e-5, atol=1e-8,
              cause="tf.nn.gelu(approximate=False), which keras.activations.gelu calls, computes "
                    "0.5·x·erfc(−x·math_ops.cast(0.7071067811865476, dtype)) (tensorflow/python/ops/nn_ops.py, "
                    "gelu): the cast of a Python float makes a float32 tensor first, so 1/√2 is 0.70710677 and a "
                    "float64 gelu is off by up to 5.0e-9 (at x = 1.41; 6.6e-7 relative where gelu is near 0, and its "
                    "gradients 2.8e-6 relative on random problems), measured against scipy's erf; its tanh form casts "
                    "the cubic's 0.044715 the same way",
              layers=("gelu", "gelu_tanh")),
    Allowance("mxnet-gelu-float32", "mxnet", "float64", rtol=1e-5, atol=5e-6,
              cause="Gluon's GELU (the LeakyReLU op's act_type='gelu') computes in 32-bit floats whatever the "
                    "data's dtype: a float64 gelu is off by up to 6.7e-7 (at x = 4.6, float32's rounding), and "
                    "below about −5 it gives 0 where the exact value is a few 1e-7, measured against scipy's erf; "
                    "a gradient sums such values of both signs, so near zero it is off by more than its own "
                    "size: up to 1.3e-6 on 120 random MLPs of N(0, 1) weights and inputs",
              layers=("gelu",)),
    Allowance("mxnet-leaky-relu-float32-slope", "mxnet", "float64", rtol=1e-7, atol=1e-8,
              cause="the LeakyReLU op takes its slope as a 32-bit float (src/operator/leaky_relu-inl.h, struct "
                    "LeakyReLUParam { float slope; }): 0.01 becomes 0.0099999998, 2.2e-8 relative on every "
                    "negative input's output and gradient; a gradient sums terms of both signs, so it can be off by "
                    "more than 2.2e-8 of itself: up to 3.1e-9 on 120 random MLPs of N(0, 1) weights and inputs",
              layers=("leaky_relu",)),
    Allowance("tensorflow-leaky-relu-float32-slope", "tensorflow", "float64", rtol=1e-7, atol=1e-8,
              cause="keras.activations.leaky_relu calls tf.nn.leaky_relu, whose LeakyRelu op holds its slope in "
                    "an attribute of type float, 32 bits (tensorflow/core/ops/nn_ops.cc, REGISTER_OP(\"LeakyRelu\")"
                    ".Attr(\"alpha: float = 0.2\")): 0.01 becomes 0.0099999998 as in MXNet (a gradient's sum: up "
                    "to 2.2e-9 on 120 random MLPs)",
              layers=("leaky_relu",)),
    Allowance("mxnet-layernorm-float32-eps", "mxnet", "float64", rtol=1e-7, atol=1e-10,
              cause="Gluon's LayerNorm op holds ε as a 32-bit float (src/operator/nn/layer_norm-inl.h, struct "
                    "LayerNormParam { float eps; }): 1e-3 becomes 0.0010000000475, which moves a float64 output by "
                    "up to 2.3e-8 relative where a row's variance is well below ε (measured; an ε exact in 32 bits, "
                    "2**-10, gives 1e-13)", layers=("layernorm",)),
)}


def applicable(dtype: str, pair: Iterable[str], optimizer: str, layers: Iterable[str] = ()) -> list[str]:
    """The allowances that concern a pair of backends at this dtype with this optimiser, for a model of
    `layers` (their labels): what a run's parity verdict applies, and names."""
    names = {RowName.parse(name).backend for name in pair}  # rows may be NAME@LABEL:MODE
    labels = set(layers)
    return [allowance.name for allowance in ALLOWANCES.values() if allowance.backend in names
            and allowance.dtype == dtype and (not allowance.optimizers or optimizer in allowance.optimizers)
            and (not allowance.layers or labels & set(allowance.layers))]


def concerning(dtype: str, pair: Iterable[str], allow: Iterable[str], layers: Iterable[str] | None = None) -> list[str]:
    """The allowances named in `allow` that concern one of the two backends at this dtype and, given the model's
    `layers` (their labels), that model: an allowance of one layer only where it has that layer (an unknown name
    is a ValueError)."""
    names, labels = set(pair), None if layers is None else set(layers)
    for name in allow:
        if name not in ALLOWANCES:
            raise ValueError(f"allow must name allowances from {', '.join(ALLOWANCES)}; received: {name!r}")
    return [name for name in allow if ALLOWANCES[name].backend in names and ALLOWANCES[name].dtype == dtype
            and (labels is None or not ALLOWANCES[name].layers or labels & set(ALLOWANCES[name].layers))]


def allowed_tolerance(dtype: str, pair: Iterable[str], allow: Iterable[str],
                      layers: Iterable[str] | None = None) -> dict[str, float]:
    """rtol and atol for comparing a pair of backends: the dtype's, widened by every allowance in
    `allow` that concerns one of the two backends at this dtype (and, given them, the model's `layers`)."""
    tolerance = dict(TOLERANCES[dtype])
    for name in concerning(dtype, pair, allow, layers):
        allowance = ALLOWANCES[name]
        tolerance = {"rtol": max(tolerance["rtol"], allowance.rtol), "atol": max(tolerance["atol"], allowance.atol)}
    return tolerance
