"""Extending the suite from another package, as the README's "Extending" section says: a toy layer type, a
toy backend and a toy task, each one module and one entry-point line, built in a temporary package and run
end to end through compare.py, check_backend and explain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import on_path

ROOT = Path(__file__).resolve().parents[1]

TOY = {
    "toy_ext/__init__.py": "",
    # A layer type: y = x * gain, one gain per feature, built in NumPy and in torch (its only translator).
    "toy_ext/scale.py": '''
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from backend_compare.layers import Build, Layer, Linear, Link, Translator


class TorchScale(Translator):
    links: ClassVar = {"gain": Link("gain")}

    def build(self, layer: Layer, build: Build) -> Any:
        import torch

        class Scale(torch.nn.Module):
            def __init__(self, width: int) -> None:
                super().__init__()
                self.gain = torch.nn.Parameter(torch.ones(width))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x * self.gain

        return Scale(layer.width)


@dataclass(frozen=True)
class Scale(Layer):
    width: int

    kind: ClassVar[str] = "scale"
    translators: ClassVar = {"torch": TorchScale}

    @classmethod
    def examples(cls) -> list[list[Layer]]:
        return [[Linear(3, 2), Scale(2)]]

    def params(self) -> dict[str, tuple[int, ...]]:
        return {"gain": (self.width,)}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if shape[-1] != self.width:
            raise ValueError(f"{self.describe()} takes width {self.width}; it follows an output of shape {shape}")
        return shape

    def forward(self, params, x, train):
        return x * params["gain"], x

    def backward(self, params, saved, grad, need_input_grad):
        return (grad * params["gain"] if need_input_grad else None), {
            "gain": (grad * saved).reshape(-1, self.width).sum(axis=0)}

    def numpy_init(self, rng, params) -> None:
        params["gain"][...] = 1.0
''',
    # A backend: the NumPy one under another name, registered by its own package.
    "toy_ext/backend.py": '''
from backend_compare.backends.numpy_backend import NumpyBackend


class ToyBackend(NumpyBackend):
    name = "toy"


class OffGain(NumpyBackend):
    """The toy layer's gain gradient 1 % too large: what explain must find."""

    name = "off-gain"

    def _backward(self, saved, output_grad):
        grads = super()._backward(saved, output_grad)
        grads["1.gain"] = grads["1.gain"] * 1.01
        return grads
''',
    # A task: y = 3 (1.5 x1 - 0.5 x2), learned as a linear layer followed by a gain.
    "toy_ext/task.py": '''
import numpy as np

from backend_compare.layers import Linear, make_spec
from backend_compare.tasks import Task, TaskOption
from backend_compare.tasks.base import assemble

from .scale import Scale


def make_problem(*, seed=0, epochs=20, batch_size=16, slope=3.0, val_fraction=0.25, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 2))
    y = slope * (X @ np.array([[1.5], [-0.5]]))
    spec = make_spec([Linear(2, 1), Scale(1)])

    def init(rng, spec):
        return {"0.weight": rng.normal(0.0, 0.1, size=(1, 2)), "0.bias": np.zeros(1), "1.gain": np.ones(1)}

    return assemble("scaled", rng, X.astype(dtype), y.astype(dtype), spec=spec, init=init,
                    val_fraction=val_fraction, epochs=epochs, batch_size=batch_size,
                    settings={"seed": seed, "slope": slope})


# Its own option, declared: --slope on the command line, refused for other tasks, a sweep may vary it.
SLOPE = TaskOption("slope", "the factor the labels were made with", float, sweepable=True)
TASK = Task(name="scaled", description="a linear layer and a learned gain (a toy)", make_problem=make_problem,
            defaults={"linear": {"lr": 0.02, "epochs": 20, "batch_size": 16}}, default_model="linear",
            data_shape=lambda **given: (64, 2), options=(SLOPE,))
''',
    "toy_ext-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: toy-ext\nVersion: 0.1\n",
    # The three registry lines.
    "toy_ext-0.1.dist-info/entry_points.txt": """
[backend_compare.layers]
scale = toy_ext.scale:Scale

[backend_compare.backends]
toy = toy_ext.backend:ToyBackend
off-gain = toy_ext.backend:OffGain

[backend_compare.tasks]
scaled = toy_ext.task:TASK
""",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return on_path(tmp_path_factory.mktemp("toy"), TOY)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_toy_task_layer_and_backend_run_through_compare_py(env: dict[str, str]) -> None:
    result = run(env, "compare.py", "--task", "scaled", "--backends", "numpy,torch,toy", "--dtype", "float64",
                 "--format", "json", "--executor", "inline")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["backend"] for row in report["summary"]] == ["numpy", "torch", "toy"]
    parity = {(row["backend_a"], row["backend_b"]): row for row in report["parity"]}
    assert parity[("numpy", "toy")]["max_abs_param_diff"] == 0.0
    assert parity[("numpy", "torch")]["max_abs_param_diff"] < 1e-12
    assert all(row["final_train_loss"] < 1e-3 for row in report["summary"])


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_backend_without_a_translator_for_the_layer_is_refused_before_training(env: dict[str, str],
                                                                                  executor: str) -> None:
    result = run(env, "compare.py", "--task", "scaled", "--backends", "numpy,jax", "--executor", executor)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == ("compare.py: error: the jax backend cannot build layer 1 scale(1); "
                             "it builds: linear, activation, batchnorm, layernorm, dropout, input, flatten, conv1d, "
                             "conv2d, maxpool, avgpool, add, rnn, gru, lstm, embedding\n")


def test_check_backend_checks_the_toy_layer_on_every_backend_that_builds_it(env: dict[str, str]) -> None:
    code = ("from backend_compare.backends import get_backend\n"
            "from backend_compare.backends.check import check_backend\n"
            "for name in ('toy', 'torch'):\n"
            "    assert 'scale' in get_backend(name).layer_kinds(), name\n"
            "    check_backend(get_backend(name))\n"
            "print('passes')")
    result = run(env, "-c", code)
    assert result.stdout.strip() == "passes", result.stderr


def test_explain_follows_the_toy_models_training(env: dict[str, str]) -> None:
    result = run(env, "compare.py", "explain", "--task", "scaled", "--backends", "numpy,torch", "--dtype", "float64")
    assert result.returncode == 0, result.stderr
    assert "numpy vs torch: agree" in result.stdout
    result = run(env, "compare.py", "explain", "--task", "scaled", "--backends", "numpy,off-gain", "--dtype", "float64")
    assert result.returncode == 1, result.stderr  # a difference found
    assert "numpy vs off-gain: differ from step 1" in result.stdout
    assert "only the gradient of 1.gain differs, by a constant factor 1.01" in result.stdout


def test_the_toy_tasks_declared_option_is_an_option_a_rule_and_a_sweep_setting(env: dict[str, str],
                                                                               tmp_path: Path) -> None:
    helped = run(env, "compare.py", "--help")
    assert "--slope SLOPE" in helped.stdout and "[scaled: 3.0]" in " ".join(helped.stdout.split())
    result = run(env, "compare.py", "--task", "scaled", "--slope", "-2", "--backends", "numpy", "--format", "json",
                 "--dtype", "float64", "--executor", "inline")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["slope"] == -2.0
    refused = run(env, "compare.py", "--task", "linreg", "--slope", "2", "--backends", "numpy")
    assert (refused.returncode, refused.stderr) == (2, "compare.py: error: --slope applies only to --task scaled; "
                                                       "this run is --task linreg\n")
    swept = run(env, "compare.py", "sweep", "--task", "scaled", "--slope", "1,2", "--backends", "numpy",
                "--executor", "inline", "--quiet", "--out", str(tmp_path / "sweep"))
    assert swept.returncode == 0, swept.stderr
    table = (tmp_path / "sweep" / "jobs.csv").read_text().splitlines()
    column = table[0].split(",").index("slope")
    assert sorted(float(line.split(",")[column]) for line in table[1:]) == [1.0, 2.0]
