"""Benchmark: the default CNN of --task cnn (digits, float32, SGD, batches of 32), the suite's step against a plain
hand-written loop in each framework (`cnn_loop` in benchmarks/plain/FRAMEWORK_loop.py), every framework held to
one thread; and the NumPy backend's hand-written convolution against torch's plain eager loop.

    python benchmarks/cnn.py             # measures, prints, and writes its section of benchmarks/RESULTS.md
    python benchmarks/cnn.py --quick     # 2 repeats; prints, writes nothing

How it measures: benchmarks/against_plain.py. The section "## The default CNN …" of RESULTS.md is replaced whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from against_plain import Model, main
from plain import CNN_LR, get_plain_cnn_loop

CNN = Model(
    task="cnn", heading="## The default CNN",
    setting=f"--task cnn: digits 1×8×8, float32, SGD lr {CNN_LR}, batches of 32",
    about=("The plain loops are each framework's `cnn_loop` in benchmarks/plain/: torch and Gluon on NCHW data, Flax "
           "and Keras on NHWC, as their tutorials hold images; each framework in its usual mode (torch eager, Gluon "
           "hybridized, jax.jit, tf.function)."),
    plain=lambda name, X, y, params, batches: get_plain_cnn_loop(name)(params, X, y[:, 0], batches),
    options={"lr": CNN_LR, "loss": "cross-entropy"})

if __name__ == "__main__":
    sys.exit(main(CNN, __file__, __doc__ or ""))
