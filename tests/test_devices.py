"""--device and --deterministic on a machine without a GPU: cuda refused in one line naming what is missing (no CUDA
build of the framework, or no device), auto running on the CPU, the math modes reported, determinism asked of
every framework; the GPU's own numbers are benchmarks/gpu.py's, run where a GPU is lent."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend_compare import mlp_spec
from backend_compare.backends import devices
from backend_compare.backends.devices import deterministic_env, missing_build, resolve
from backend_compare.comparison.numerics import shadow_noise
from backend_compare.comparison.run import BackendResult
from tests.conftest import RunCli, load_backend

ROOT = Path(__file__).resolve().parents[1]
SPEC = mlp_spec(2, (3,), 1, "tanh")
CPU_BUILDS = {"numpy": "computes on the CPU only", "torch": "is a CPU build", "jax": "has no CUDA plugin",
              "tensorflow": "tensorflow-cpu", "mxnet": "MXNet's CPU build"}


@pytest.mark.parametrize("name", list(CPU_BUILDS))
def test_cuda_on_a_cpu_build_is_refused_naming_the_build(name: str) -> None:
    with pytest.raises(ValueError, match=f"device cuda: .*{CPU_BUILDS[name]}"):
        load_backend(name)(SPEC, device="cuda")
    assert load_backend(name)(SPEC, device="auto").device == "cpu"


def test_a_cuda_build_without_a_device_is_refused_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"torch": "2.13.0+cu128", "jax-cuda12-plugin": "0.7.1", "tensorflow-cpu": None}
    monkeypatch.setattr(devices, "_version", lambda name: versions.get(name, "1.0"))
    monkeypatch.setattr(devices, "device_count", lambda framework: 0)
    for framework in ("torch", "jax", "tensorflow"):
        assert missing_build(framework) is None
        assert resolve(framework, "cuda") == ("cpu", f"{framework} sees no CUDA device on this machine")
        assert resolve(framework, "auto") == ("cpu", None)
    monkeypatch.setattr(devices, "device_count", lambda framework: 1)
    assert resolve("torch", "auto") == resolve("torch", "cuda") == ("cuda", None)


def test_the_device_count_is_asked_in_a_process_of_its_own() -> None:
    devices.device_count.cache_clear()
    assert devices.device_count("torch") == 0  # this machine: a CPU build, no device
    assert devices.device_count("mxnet") == 0  # no way to ask it: none


def test_bad_devices_are_one_line_errors(cli: RunCli) -> None:
    result = cli("--device", "gpu")
    assert result.code == 2 and "argument --device: invalid choice: 'gpu' (choose from 'cpu', 'cuda', 'auto')" \
        in result.err
    result = cli("--device", "cuda", "--backends", "torch")
    assert result.code == 2 and result.err.strip().endswith(
        "error: backend 'torch' cannot run on --device cuda: torch 2.13.0+cpu is a CPU build (its version's +cpu); "
        "pip install -e '.[gpu]'")
    result = cli("--device", "cuda")
    assert result.code == 2 and "none of the installed backends can run this" in result.err
    assert "skipping backend 'mxnet': cannot run on --device cuda: mxnet 1.9.1 is MXNet's CPU build" in result.err
    with pytest.raises(ValueError, match="device must be one of cpu, cuda, auto; received: 'tpu'"):
        load_backend("numpy")(SPEC, device="tpu")
    with pytest.raises(ValueError, match="deterministic must be True or False; received: 'yes'"):
        load_backend("numpy")(SPEC, deterministic="yes")


def test_deterministic_runs_report_each_frameworks_mode(tmp_path: Path) -> None:
    """In worker processes (torch's and TensorFlow's switches are process-wide): every framework that has a
    deterministic mode reports it on; the math modes table shows where each ran."""
    done = subprocess.run([sys.executable, "compare.py", "--deterministic", "--device", "auto", "--epochs", "1",
                           "--format", "json", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    modes = {(row["backend"], row["setting"]): row["value"] for row in report["math_modes"]}
    for name in ("torch", "mxnet", "jax", "tensorflow"):
        assert modes[(name, "deterministic")] == "on", name
        assert modes[(name, "device")] == "cpu"
    assert modes[("torch", "TF32 matmul")] == "off" and modes[("torch", "TF32 convolution")] == "on"
    assert modes[("tensorflow", "TF32 matmul")] == "on" and modes[("jax", "TF32 matmul")] == "off"
    assert report["options"]["deterministic"] is True and report["options"]["device"] == "auto"


def test_the_deterministic_environment_keeps_the_flags_given() -> None:
    env = deterministic_env({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"})
    assert env["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false --xla_gpu_deterministic_ops=true"
    assert env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8" and env["TF_DETERMINISTIC_OPS"] == "1"


def test_a_plain_run_shows_no_math_modes_but_saves_them(cli: RunCli) -> None:
    result = cli("--backends", "numpy,torch", "--epochs", "1", "--format", "json")
    report = json.loads(result.out)
    assert {row["backend"] for row in report["math_modes"]} == {"numpy", "torch"}
    assert "math modes" not in cli("--backends", "numpy", "--epochs", "1").out


def _result(name: str, offset: float) -> BackendResult:
    import numpy as np
    return BackendResult(name, "shared", "ok", {"w": np.array([1.0 + offset])}, np.array([1.0 + offset]), 1.0, 1.0,
                         1.0, None, None, 1, 0.0)


def test_the_noise_of_a_low_precision_run_is_the_closest_backend_to_the_shadow() -> None:
    """A wrong backend, far from the float64 shadow, does not set the noise its difference is held against."""
    shadow, close, wrong = _result("float64 shadow", 0.0), _result("torch", 0.01), _result("jax", 0.5)
    noise = shadow_noise([wrong, close], shadow)
    assert noise is not None and noise() == (close, shadow)
    assert shadow_noise([], shadow) is None


def _default_tf32(framework: str) -> None:
    """Each framework's own defaults back: the benchmark's switches are process-wide."""
    if framework == "torch":
        import torch
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, True
    else:
        import jax
        jax.config.update("jax_default_matmul_precision", None)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_the_gpu_benchmark_measures_with_each_frameworks_tf32_switch(framework: str) -> None:
    """benchmarks/gpu.py's measurement, run with the CPU standing for the GPU: TF32 changes nothing there, so its
    two parities are one number; its speeds are the suite's steady steps."""
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    assert spec is not None and spec.loader is not None
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        gpu = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gpu)
        row = gpu.measured(framework, "linreg", ["--epochs", "1", "--n-samples", "100"], 1, gpu="cpu")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
        _default_tf32(framework)
    assert row["vs float64, TF32 on"] == row["vs float64, TF32 off"] < 1e-4
    assert row["µs/step"] > 0
