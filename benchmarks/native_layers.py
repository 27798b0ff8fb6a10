"""What each framework's own layer defaults change, measured: a model ported without giving its layers' options
gets the target framework's defaults (BatchNorm's momentum and ε, gelu's form), and this is how far that moves
training. Each row trains the default CNN with the layer in question on digits, float64, 3 epochs from the task's
shared start and batches, in that framework's backend: once with the canonical options every backend is given,
once with the framework's own defaults. Everything is computed by the framework named.

    python benchmarks/native_layers.py          # prints, and writes its section of benchmarks/RESULTS.md
    python benchmarks/native_layers.py --quick  # prints only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sections import write_section  # noqa: E402

from backend_compare.backends import get_backend  # noqa: E402
from backend_compare.tasks import get_task  # noqa: E402

HEADING = "## Each framework's own layer defaults"
STACK = ("conv2d(6, 3, padding=same), {norm}, {act}, maxpool(2), conv2d(16, 3, padding=same), {norm}, {act}, "
         "maxpool(2), flatten, linear(10)")


def cnn(momentum: float = 0.9, eps: float = 1e-5, running: str = "biased", act: str = "relu") -> str:
    """The CNN with BatchNorm of these options and this activation; the defaults are the canonical options."""
    return STACK.format(norm=f"batchnorm(momentum={momentum}, eps={eps}, running_var={running})", act=act)


# (framework, what its layer does by default, the canonical model, the model with its defaults)
CASES = [
    ("torch", "nn.BatchNorm2d(): momentum 0.1 of the new batch (0.9 of the old value), eps 1e-5",
     cnn(running="unbiased"), cnn(momentum=1 - 0.1, running="unbiased")),
    ("mxnet", "gluon.nn.BatchNorm(): momentum 0.9, epsilon 1e-5", cnn(), cnn(momentum=0.9, eps=1e-5)),
    ("jax", "nnx.BatchNorm(): momentum 0.99, epsilon 1e-5", cnn(), cnn(momentum=0.99)),
    ("tensorflow", "keras.layers.BatchNormalization(): momentum 0.99, epsilon 1e-3", cnn(),
     cnn(momentum=0.99, eps=1e-3)),
    ("jax", "jax.nn.gelu: approximate=True (the tanh form); torch's nn.GELU() and Keras's gelu are exact",
     cnn(act="gelu"), cnn(act="gelu_tanh")),
]


def trained(name: str, layers: str) -> dict[str, Any]:
    problem = get_task("cnn").make_problem(dtype="float64", epochs=3, layers=layers)
    model = get_backend(name)(problem.spec, dtype="float64", lr=0.1, loss="cross-entropy")
    model.set_params(problem.initial_params)
    model.load(problem.X_train, problem.y_train)
    for batches in problem.epoch_batches:
        model.train_epoch(batches)
    predicted = model.predict(problem.X_val).argmax(axis=1)
    return {"state": {**model.get_params(), **model.get_state()}, "val_loss": model.loss(problem.X_val, problem.y_val),
            "val_accuracy": float(np.mean(predicted == problem.y_val[:, 0]))}


def rows() -> list[dict[str, Any]]:
    found = []
    for name, default, canonical, native in CASES:
        ours, theirs = trained(name, canonical), trained(name, native)
        moved = max(float(np.max(np.abs(theirs["state"][key] - value))) for key, value in ours["state"].items())
        found.append({"framework": name, "default": default, "val_loss": ours["val_loss"],
                      "native_val_loss": theirs["val_loss"], "val_accuracy": ours["val_accuracy"],
                      "native_val_accuracy": theirs["val_accuracy"], "largest_change": moved})
    return found


def table(found: list[dict[str, Any]]) -> str:
    lines = ["| framework | its default | validation loss, canonical → its default | validation accuracy | "
             "largest change of a parameter or running statistic |", "|---|---|---|---|---|"]
    for row in found:
        lines.append(f"| {row['framework']} | {row['default']} | {row['val_loss']:.4f} → {row['native_val_loss']:.4f} "
                     f"| {row['val_accuracy']:.3f} → {row['native_val_accuracy']:.3f} | {row['largest_change']:.3g} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="prints; writes nothing")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = parser.parse_args(argv)
    section = (f"{HEADING} (the default CNN with the layer in question, digits, float64, SGD lr 0.1, 3 epochs from "
               "the shared start; each row in that framework's backend)\n\n" + table(rows()) + "\n\n"
               "torch's and Gluon's BatchNorm defaults are the canonical layer's (torch's momentum read as the "
               "new batch's share); Flax's and Keras's keep 0.99 of the old running statistic, so after 3 epochs "
               "the running statistics evaluation reads are still far from the data's, and Keras's ε is 100× "
               "the others'.\n")
    print(section)
    if not args.quick:
        write_section(Path(args.out), HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
