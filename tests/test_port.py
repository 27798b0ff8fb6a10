"""check_port on real ports, as the frameworks' tutorials write the models (examples/ports/): each pair faithful
(agrees), with one convention left at its framework's default (found and named), and with one genuine bug (found at
its layer); the weights carried both ways; bad input; the command and the pytest assertion."""

from __future__ import annotations

import functools
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend_compare.porting import PortReport, check_port
from backend_compare.porting.factories import load_factory
from tests.conftest import RunCli, load_backend

PORTS = Path(__file__).resolve().parents[1] / "examples" / "ports"
FRAMEWORKS = {"lenet_gluon": "mxnet", "lenet_torch": "torch", "vgg_keras": "tensorflow", "vgg_flax": "jax",
              "lm_torch": "torch", "lm_flax": "jax"}


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "lm":
        return rng.integers(0, 20, size=(6, 7)), rng.integers(0, 20, size=(6, 7))
    size = 28 if kind == "lenet" else 8
    return rng.normal(size=(16, 1, size, size)).astype(np.float32), rng.integers(0, 10, size=16)


def model(given: str) -> Any:
    """A model of examples/ports, FILE:FACTORY; the test is skipped where its framework is not installed."""
    load_backend(FRAMEWORKS[given.partition(":")[0]])
    file, _, factory = given.partition(":")
    return load_factory(f"{PORTS / file}.py:{factory}", "A")


@functools.cache
def checked(a: str, b: str, **options: Any) -> PortReport:
    X, y = _data(a.partition("_")[0])
    return check_port(model(a), model(b), X, y, loss="cross-entropy", lr=0.1, **options)


def _check(a: str, b: str, **options: Any) -> PortReport:
    load_backend(FRAMEWORKS[a.partition(":")[0]])
    load_backend(FRAMEWORKS[b.partition(":")[0]])
    return checked(a, b, **options)


@pytest.mark.parametrize(("a", "b", "layers"), [("lenet_gluon:lenet", "lenet_torch:lenet", 5),
                                                ("vgg_keras:vgg", "vgg_flax:vgg", 5),
                                                ("lm_torch:lm", "lm_flax:lm", 3)])
def test_a_faithful_port_agrees_in_both_modes_and_in_training(a: str, b: str, layers: int) -> None:
    report = _check(a, b)
    assert report.agrees, str(report)
    assert report.round_trip == "exact" and len(report.pairs) == layers and not report.conventions
    assert [item.mode for item in report.forward] == ["eval", "train"]
    assert all(row.agrees for item in report.forward for row in item.rows)
    assert report.training is not None and len(report.training.steps) == 3
    assert all(row.parameter_difference <= row.tolerance for row in report.training.steps)
    assert report.training.gradient_difference < 1e-4
    assert json.loads(report.to_json())["agrees"] is True
    assert "<html" in report.html() and "Port check" in report.html()


def test_gluon_batchnorm_against_torch_is_found_in_the_running_variance() -> None:
    report = _check("lenet_gluon:lenet_batchnorm", "lenet_torch:lenet_batchnorm")
    differing = [(item.kind, item.setting) for item in report.conventions]
    assert differing == [("batchnorm", "unbiased_running_var")] * 4
    assert all(item.agrees for item in report.forward)  # the running statistics part only once trained
    assert not report.agrees and report.training is not None
    assert "the state differs: 13.running_var" in (report.first_difference or "")
    assert "unbiased_running_var" in (report.first_difference or "")


def test_a_missing_bias_is_named_at_its_layer_with_both_models_side_by_side() -> None:
    with pytest.raises(ValueError, match=r"A's '5' holds .*'bias'.*, B's '9' holds \{'weight': \(84, 120\)\}") as err:
        _check("lenet_gluon:lenet", "lenet_torch:lenet_missing_bias")
    assert "linear(120, 84, bias=False)" in str(err.value) and "mapping=" in str(err.value)


def test_keras_and_flax_batchnorm_defaults_are_found_at_the_first_batchnorm() -> None:
    report = _check("vgg_keras:vgg_batchnorm", "vgg_flax:vgg_batchnorm")
    settings = {(item.setting, item.value_a, item.value_b) for item in report.conventions}
    assert ("eps", 0.001, 1e-05) in settings
    assert ("variance", "two-pass, E[(x − E[x])²]", "E[x²] − E[x]² (use_fast_variance=True)") in settings
    assert not report.agrees
    assert report.first_difference is not None and report.first_difference.startswith(
        "forward (eval mode): A's '0.1' and B's 'norms.0' (batchnorm) get the same input")


def test_a_flatten_of_the_wrong_layout_is_found_between_the_layers() -> None:
    report = _check("vgg_keras:vgg", "vgg_flax:vgg_channels_first_flatten")
    assert not report.agrees and report.round_trip == "exact"
    assert "A's '3' and B's 'fc1' get inputs" in (report.first_difference or "")
    assert "images flattened channels first on one side and channels last" in (report.first_difference or "")


def test_torch_two_lstm_biases_against_flax_one_are_named_where_training_parts() -> None:
    report = _check("lm_torch:lm_two_biases", "lm_flax:lm")
    assert [(item.kind, item.setting, item.value_a, item.value_b) for item in report.conventions] == [
        ("lstm", "bias", "two", "input")]
    assert all(item.agrees for item in report.forward) and report.round_trip == "exact"  # carried as their sum
    assert report.first_difference is not None and report.first_difference.startswith("step 1: rnn.bias_ih")
    assert "move their sum twice as far" in report.first_difference


def test_an_extra_activation_is_found_and_named() -> None:
    report = _check("lm_torch:lm_extra_relu", "lm_flax:lm")
    assert "A's 'decoder' and B's 'decoder' get inputs" in (report.first_difference or "")
    assert "(A applies relu, B applies nothing (identity))" in (report.first_difference or "")


def test_float64_holds_gluon_to_its_named_allowance() -> None:
    report = _check("lenet_gluon:lenet", "lenet_torch:lenet", dtype="float64")
    assert report.dtype == "float64" and report.agrees, str(report)
    assert report.allowances == ["mxnet-float32-hyperparameters"]
    assert max(row.output_difference or 0.0 for item in report.forward for row in item.rows) < 1e-12


def test_a_torch_gru_ports_to_keras_with_both_biases_in_one_variable() -> None:
    """Keras's GRU keeps z, r, h and both biases in one (2, 3H) variable: each written in turn, carried exactly."""
    load_backend("torch")
    load_backend("tensorflow")
    import keras
    import torch
    from torch import nn

    class Last(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.gru, self.head = nn.GRU(3, 5, batch_first=True), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.gru(x)[0][:, -1])

    ported = keras.Sequential([keras.Input((4, 3)), keras.layers.GRU(5), keras.layers.Dense(2)])
    X = np.random.default_rng(1).normal(size=(6, 4, 3)).astype(np.float32)
    report = check_port(Last(), ported, X, np.random.default_rng(2).normal(size=(6, 2)).astype(np.float32))
    assert report.agrees and report.round_trip == "exact", str(report)
    assert [row.kind for row in report.forward[0].rows] == ["gru", "linear"]


def test_a_gluon_time_major_lstm_is_read_in_its_layout() -> None:
    load_backend("mxnet")
    load_backend("torch")
    from mxnet import gluon
    from torch import nn

    class TimeMajor(gluon.Block):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = gluon.rnn.LSTM(4, input_size=3)  # layout TNC, Gluon's default
            self.rnn.initialize()

        def forward(self, x: Any) -> Any:
            return self.rnn(x.swapaxes(0, 1)).swapaxes(0, 1)

    class BatchFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(3, 4, batch_first=True)

        def forward(self, x: Any) -> Any:
            return self.rnn(x)[0]

    X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    report = check_port(TimeMajor(), BatchFirst(), X, np.zeros((2, 5, 4), np.float32))
    assert report.agrees, str(report)
    assert report.forward[0].rows[0].input_difference == 0.0


def test_an_explicit_mapping_pairs_layers_out_of_order() -> None:
    load_backend("torch")
    from torch import nn

    class Swapped(nn.Module):  # its layers registered in another order than its forward calls them
        def __init__(self) -> None:
            super().__init__()
            self.second, self.first = nn.Linear(4, 2), nn.Linear(3, 4)

        def forward(self, x: Any) -> Any:
            return self.second(self.first(x).tanh())

    a = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert check_port(a, Swapped(), X).agrees  # the forward's order, not the registration's
    report = check_port(a, Swapped(), X, mapping={"0": "first", "2": "second"})
    assert report.agrees and [pair["B"] for pair in report.pairs] == ["first", "second"]
    assert check_port(a, Swapped(), X, mapping=lambda path: {"0": "first", "2": "second"}[path]).agrees
    with pytest.raises(ValueError, match=r"mapping maps '0' to 'third', not a layer with parameters of model B; "
                                         r"its layers: first, second"):
        check_port(a, Swapped(), X, mapping={"0": "third", "2": "second"})
    with pytest.raises(ValueError, match=r"mapping leaves layers unpaired: A's \['2'\], B's \['second'\]"):
        check_port(a, Swapped(), X, mapping={"0": "first"})


def test_bad_input_is_one_error_naming_the_model_and_what_was_expected() -> None:
    load_backend("torch")
    from torch import nn

    a = nn.Sequential(nn.Linear(3, 2))
    X = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match=r"^model B: a builtins.str is not a model check_port reads: a torch "
                                        r"nn.Module, a Gluon Block, a Keras model or layer, or a Flax NNX Module$"):
        check_port(a, "model.pt", X)
    with pytest.raises(ValueError, match=r"^model A: it failed on inputs of shape \(4, 5\) \(canonical layout\): "
                                         r"RuntimeError: mat1 and mat2 shapes cannot be multiplied"):
        check_port(a, nn.Sequential(nn.Linear(5, 2)), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"^model A has 1 layers with parameters and model B 2: the layers cannot "
                                         r"be paired in order; pass mapping="):
        check_port(a, nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), X)
    with pytest.raises(ValueError, match=r"model A holds float32 parameters and model B float64: pass dtype="):
        check_port(a, nn.Sequential(nn.Linear(3, 2)).double(), X)
    for options, message in (({"loss": "l1"}, "loss must be one of mse, cross-entropy; received: 'l1'"),
                             ({"optimizer": "lion"}, "optimizer must be one of sgd, momentum, adam"),
                             ({"dtype": "float16"}, "dtype must be one of float32, float64 or None"),
                             ({"steps": -1}, "steps must be an integer from 0 to 10000; received: -1"),
                             ({"lr": float("nan")}, "lr must be a positive number below 1000; received: nan")):
        with pytest.raises(ValueError, match=message):
            check_port(a, nn.Sequential(nn.Linear(3, 2)), X, **options)
    with pytest.raises(ValueError, match=r"inputs hold NaN or infinity"):
        check_port(a, nn.Sequential(nn.Linear(3, 2)), np.full((4, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"model B: layer '0' \(torch.nn.modules.linear.Bilinear\) holds parameters "
                                         r"check_port cannot read; it reads: Linear"):
        check_port(a, nn.Sequential(nn.Bilinear(3, 3, 2)), X)


def test_a_keras_model_is_not_cast_and_says_how_to_build_it() -> None:
    load_backend("torch")
    load_backend("tensorflow")
    import keras
    from torch import nn

    ported = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"model B: a Keras model's dtype is fixed when it is built, and it holds "
                                         r"float32: build it with dtype='float64'"):
        check_port(nn.Sequential(nn.Linear(3, 2)), ported, np.zeros((2, 3)), dtype="float64")


def test_assert_same_model_fails_with_the_verdict_and_the_conventions_not_a_traceback(
        pytester: pytest.Pytester) -> None:
    load_backend("torch")
    pytester.makepyfile(test_mine="""
        import numpy as np
        from torch import nn
        from backend_compare import assert_same_model

        def test_port():
            a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
            b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, eps=1e-3), nn.Linear(4, 1))
            X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
            assert_same_model(a, b, X)

        def test_faithful():
            a = nn.Sequential(nn.Linear(3, 1))
            assert_same_model(a, nn.Sequential(nn.Linear(3, 1)), np.ones((2, 3), np.float32)).agrees
    """)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "AssertionError: the port differs: forward (eval mode): A's '1' and B's '1' (batchnorm) get the same " \
           "input" in output
    assert "convention: batchnorm eps: A's '1' 1e-05, B's '1' 0.001" in output
    assert "porting/check.py" not in output and "porting/testing.py" not in output


def test_the_command_checks_a_port_and_writes_its_report(cli: RunCli, tmp_path: Path) -> None:
    """Each model in a worker process of its own, the report and its repro bundle written, the workers gone after;
    the repro scripts each alone print the losses the check saw."""
    load_backend("torch")
    load_backend("jax")
    import psutil

    X, y = _data("lm")
    np.savez(tmp_path / "tokens.npz", X=X, y=y)
    a, b = f"{PORTS / 'lm_torch.py'}:lm", f"{PORTS / 'lm_flax.py'}:lm"
    common = ("--inputs", str(tmp_path / "tokens.npz"), "--loss", "cross-entropy", "--lr", "0.1", "--check")
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    ran = cli("port", a, b, *common, "--out", str(tmp_path / "report"), "--executor", "process")
    assert ran.code == 0, ran.err
    left = {child.pid for child in psutil.Process().children(recursive=True)} - before
    assert not [pid for pid in left if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert ran.out.startswith("port check · A: PyTorch LanguageModel → B: Flax NNX LanguageModel · float32")
    assert sorted(path.name for path in (tmp_path / "report").iterdir()) == [
        ".backend-compare.json", "report.html", "report.json", "report.txt", "repro"]
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["agrees"] is True
    repro = tmp_path / "report" / "repro"
    assert sorted(path.name for path in repro.iterdir()) == [
        "inputs.npz", "model_a.py", "model_b.py", "repro_a.py", "repro_b.py", "weights_a.npz", "weights_b.npz"]
    scripts = {side: subprocess.Popen([sys.executable, f"repro_{side}.py"], cwd=repro, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for side in ("a", "b")}
    for side, script in scripts.items():  # each alone, in a process of its own, computes what the check saw
        out, err = script.communicate(timeout=300)
        assert script.returncode == 0, err
        losses = [float(line.rpartition(" ")[2]) for line in out.splitlines() if line.startswith("step")]
        assert losses == pytest.approx([row[f"loss_{side}"] for row in saved["training"]["steps"]], rel=1e-6)
    ran = cli("port", f"{PORTS / 'lm_torch.py'}:lm_extra_relu", b, *common, "--format", "json")
    assert ran.code == 1 and json.loads(ran.out)["agrees"] is False
    assert "A applies relu" in json.loads(ran.out)["first_difference"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    (tmp_path / "elsewhere.py").write_text("import paddle\n\n\ndef model():\n    return paddle.nn.Linear(3, 2)\n")
    for args, message in (
            ((a, b, "--inputs", str(tmp_path / "none.npz")), f"--inputs '{tmp_path / 'none.npz'}' is not a file"),
            ((a, "lm_flax.py", *common), "model B must be FILE.py:FACTORY"),
            ((a, f"{PORTS / 'lm_flax.py'}:make", *common), "model B: " + str(PORTS / "lm_flax.py")
             + " has no function 'make'; its functions: lm"),
            ((a, b, *common, "--out", str(tmp_path / "mine")), "holds files that are not a port report (notes.txt)"),
            ((a, b, *common, "--steps", "-2"), "--steps must be from 0 to 10000; received: -2"),
            ((a, f"{tmp_path / 'elsewhere.py'}:model", *common),
             f"model B: {tmp_path / 'elsewhere.py'} needs a package that cannot be imported here: "
             "ModuleNotFoundError: No module named 'paddle'")):
        ran = cli("port", *args)
        assert ran.code == 2 and ran.out == "", ran.err
        assert ran.err.startswith("compare.py port: error: ") and message in ran.err, ran.err
        assert "Traceback" not in ran.err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_dropout_is_held_at_zero_in_training_mode_and_said() -> None:
    load_backend("torch")
    load_backend("tensorflow")
    import keras
    from torch import nn

    a = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1))
    b = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5),
                          keras.layers.Dense(1)])
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    report = check_port(a, b, X, X[:, :1])
    assert report.agrees, str(report)
    assert "dropout held at rate 0 in training mode (A's ['2'], B's ['1'])" in " ".join(report.notes)
    assert a[2].p == 0.5 and float(b.layers[1].rate) == 0.5  # as they were
    assert not [item for item in report.conventions if item.kind == "dropout"]


README_EXAMPLE = "print(report.verdict)\n"


def test_the_readme_port_section_is_real(cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    load_backend("torch")
    load_backend("jax")
    load_backend("mxnet")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text().split("## Check your own port", 1)[1]
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    shown = " ".join(line.removeprefix("# ") for line in code.split(README_EXAMPLE, 1)[1].splitlines())
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == shown
    block = readme.split("```\n$ python compare.py ", 1)[1].split("```", 1)[0]
    command, *printed = block.splitlines()
    ran = cli(*command.split())
    assert ran.code == 1, ran.err

    def numbers_out(text: str) -> str:
        return re.sub(r"\d+\.\d+(e-\d+)? s|\d\.\d+e?-?\d*", "N", text)

    assert [numbers_out(line) for line in ran.out.splitlines()[:len(printed)]] == [numbers_out(line)
                                                                                    for line in printed]


def test_torch_coupled_weight_decay_against_keras_decoupled_is_named_before_and_where_training_parts() -> None:
    load_backend("torch")
    load_backend("tensorflow")
    import keras
    import torch
    from torch import nn

    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    b = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    report = check_port(a, b, X, X[:, :1], optimizer="adam", weight_decay=0.01)
    assert [(item.setting, item.value_a.split(":")[0], item.value_b.split(":")[0])
            for item in report.conventions] == [("weight decay", "coupled", "decoupled"),
                                                ("adam ε", "1e-08, added to √v̂ (torch/optim/adam.py)",
                                                 "1e-07, added to √v, the bias correction in the step size "
                                                 "(keras/src/optimizers/adam.py)")]
    assert not report.agrees and "the conventions that differ there: optimizer weight decay" in (
        report.first_difference or "")
    plain = check_port(a, b, X, X[:, :1], optimizer="sgd", weight_decay=0.01)  # the same for plain SGD
    assert plain.agrees and not plain.conventions, str(plain)


def test_flax_as_model_a_is_shadowed_and_left_as_it_was() -> None:
    """Flax's cells keep random keys and make their carry in their param_dtype: the float64 shadow casts what it
    must and puts back the flags (jax_enable_x64, each module's mode) it changed."""
    load_backend("torch")
    load_backend("jax")
    import jax

    x64 = jax.config.read("jax_enable_x64")
    flax_model, torch_model = model("lm_flax:lm"), model("lm_torch:lm")
    X, y = _data("lm")
    report = check_port(flax_model, torch_model, X, y, loss="cross-entropy", lr=0.1)
    assert report.agrees, str(report)
    assert report.training is not None and report.training.tolerance == pytest.approx(1e-5)
    assert jax.config.read("jax_enable_x64") == x64
    assert torch_model.training  # a torch module comes back in its own mode


def test_overflow_and_nan_never_agree() -> None:
    load_backend("torch")
    import torch
    from torch import nn

    class Exp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(x)

    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(2, 2), Exp())
    b = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    X = np.full((4, 2), 1000.0, np.float32)  # float32's exp overflows, float64's does not
    report = check_port(a, b, X)
    assert not report.agrees and all(math.isfinite(item.tolerance) for item in report.forward)
    assert json.loads(report.to_json())["forward"][0]["output_difference"] == "inf"
    with pytest.raises(ValueError, match="targets must be finite numbers; received: dtype float32, with NaN"):
        check_port(a, b, X, np.full((4, 2), np.nan, np.float32))


def test_targets_that_do_not_fit_the_output_are_one_error_before_training() -> None:
    load_backend("torch")
    from torch import nn

    a, b = nn.Sequential(nn.Linear(3, 4)), nn.Sequential(nn.Linear(3, 4))
    X = np.zeros((8, 3), np.float32)
    with pytest.raises(ValueError, match=r"targets hold 5 value\(s\) per row and model A's output 4: for "
                                         r"loss='mse' they must be as many"):
        check_port(a, b, X, np.zeros((8, 5), np.float32))
    with pytest.raises(ValueError, match=r"targets must be class indices from 0 to 3, one per output position "
                                         r"\(8 in all; model A's output is \(8, 4\)\); received: shape \(8,\), "
                                         r"from 0 to 7"):
        check_port(a, b, X, np.arange(8), loss="cross-entropy")
    with pytest.raises(ValueError, match=r"model A: it failed on inputs of shape \(1, 3\) \(canonical layout\): "
                                         r"ValueError: Expected more than 1 value per channel"):
        check_port(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), nn.Sequential(nn.Linear(3, 4),
                                                                                   nn.BatchNorm1d(4)), X[:1])
    bare = check_port(nn.Linear(3, 4), nn.Linear(3, 4), X)  # a bare layer is its own model
    assert [pair["kind"] for pair in bare.pairs] == ["linear"] and bare.agrees
    with pytest.raises(ValueError, match=r"mapping gives B's 'Linear' to more than one layer of A"):
        check_port(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4)), nn.Linear(3, 4), X,
                   mapping={"0": "Linear", "1": "Linear"})


def test_what_a_check_cannot_account_for_is_refused_by_name(cli: RunCli, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    load_backend("torch")
    import torch
    from torch import nn

    class Scaled(nn.Module):  # a parameter of the model's own, outside every layer
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.scale = nn.Linear(3, 2), nn.Parameter(torch.ones(2))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * self.scale

    class EvalOnly(nn.Module):  # a layer its forward calls in one mode only
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.extra = nn.Linear(3, 2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if self.training else self.extra(self.fc(x))

    X = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"model A: it holds parameters outside the layers check_port reads \(scale\)"):
        check_port(Scaled(), nn.Sequential(nn.Linear(3, 2)), X)
    with pytest.raises(ValueError, match=r"model B: layer 'extra' is not called in train mode"):
        check_port(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), EvalOnly(), X)
    import backend_compare.porting.check as checking

    monkeypatch.setattr(checking, "TRAJECTORY_BYTES", 3 * 8 * 8 * 3)  # a small budget: the guard under test
    with pytest.raises(ValueError, match=r"steps must be at most 3 for models of 8 parameters: 10000 steps keep"):
        check_port(nn.Sequential(nn.Linear(3, 2)), nn.Sequential(nn.Linear(3, 2)), X, np.zeros((4, 2), np.float32),
                   steps=10_000)
    monkeypatch.undo()
    same = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="model A and model B are one object"):
        check_port(same, same, X)
    (tmp_path / "leaves.py").write_text("import sys\n\n\ndef model():\n    print('making')\n    sys.exit(3)\n")
    np.save(tmp_path / "one.npy", X)
    for args, message in (((f"{tmp_path / 'leaves.py'}:model", f"{PORTS / 'lm_torch.py'}:lm", "--inputs",
                            str(tmp_path / "one.npy")), "is one array (.npy); it needs an .npz with X"),):
        ran = cli("port", *args)
        assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err, ran.err
    np.savez(tmp_path / "x.npz", X=X)
    ran = cli("port", f"{tmp_path / 'leaves.py'}:model", f"{PORTS / 'lm_torch.py'}:lm", "--inputs",
              str(tmp_path / "x.npz"), "--format", "json")
    assert ran.code == 2 and ran.out == ""  # the factory's print went to stderr: stdout is the report's
    assert f"model A: {tmp_path / 'leaves.py'}:model() called sys.exit(3)" in ran.err
