"""Benchmark: the default LSTM of --task sequence (sunspot windows of 10, float32, SGD, batches of 16), the
suite's step against a plain hand-written loop in each framework (`lstm_loop` in benchmarks/plain/FRAMEWORK_loop.py,
as its tutorials write one), every framework held to one thread; and the NumPy backend's hand-written
backpropagation through time against torch's plain eager loop.

    python benchmarks/sequence.py            # measures, prints, and writes its section of benchmarks/RESULTS.md
    python benchmarks/sequence.py --quick    # 2 repeats; prints, writes nothing

How it measures: benchmarks/against_plain.py. The section "## The default LSTM …" of RESULTS.md is replaced whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from against_plain import Model, main
from plain import SEQUENCE_LR, get_plain_lstm_loop

LSTM = Model(
    task="sequence", heading="## The default LSTM",
    setting=(f"--task sequence: sunspot windows of 10 years, LSTM(1 → 16) and a linear layer, float32, SGD lr "
             f"{SEQUENCE_LR}, batches of 16"),
    about=("The plain loops are each framework's `lstm_loop` in benchmarks/plain/, as its tutorials write one: "
           "torch's nn.LSTM eagerly, Gluon's rnn.LSTM hybridized, Flax NNX's nnx.RNN of an OptimizedLSTMCell under "
           "jax.jit (nnx.scan inside), Keras's LSTM under tf.function; the suite's step in each framework's usual "
           "mode, compile time apart."),
    plain=lambda name, X, y, params, batches: get_plain_lstm_loop(name)(X, y, batches),
    options={"lr": SEQUENCE_LR})

if __name__ == "__main__":
    sys.exit(main(LSTM, __file__, __doc__ or ""))
