"""compare.py explain names the step, stage, place and likely cause where two backends part ways: on
real framework differences (MXNet's float32 hyper-parameters), on causes planted in subclasses of the
numpy backend, and stays silent where backends agree to rounding."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

from backend_compare.backends import BACKENDS, Backend
from backend_compare.backends.numpy_backend import NumpyBackend
from backend_compare.comparison.explain import Explainer, Finding
from backend_compare.comparison.repro import bundle_arrays, script, write_bundle
from backend_compare.layers import activation
from backend_compare.optimizers.training import ADAM_BETAS, ADAM_EPS
from backend_compare.tasks import get_task
from tests.conftest import RunCli, load_backend
from tests.processes import outcome

ROOT = Path(__file__).resolve().parents[1]


class HalfLoss(NumpyBackend):
    """The loss (and so its gradient) scaled by ½: half-MSE where the other computes MSE."""

    name = "half-loss"

    def _loss_and_output_grad(self, output: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = super()._loss_and_output_grad(output, y)
        return 0.5 * loss, 0.5 * grad


class WrongTanhDerivative(NumpyBackend):
    """tanh's derivative written 1 − z instead of 1 − z² in the hand-written backward."""

    name = "wrong-tanh"

    def _backward(self, saved: list[object], output_grad: np.ndarray) -> dict[str, np.ndarray]:
        wrong = {"tanh": dataclasses.replace(activation.FUNCTIONS["tanh"], derivative=lambda a, z: 1.0 - z)}
        with mock.patch.dict(activation.FUNCTIONS, wrong):
            return super()._backward(saved, output_grad)


class ScaledBiasGradient(NumpyBackend):
    """The output layer's bias gradient 1 % too large."""

    name = "scaled-bias"

    def _backward(self, saved: list[object], output_grad: np.ndarray) -> dict[str, np.ndarray]:
        grads = super()._backward(saved, output_grad)
        last = max(int(key.split(".")[0]) for key in grads if key.endswith(".bias"))
        grads[f"{last}.bias"] = grads[f"{last}.bias"] * 1.01
        return grads


class EpsilonOnRawRoot(NumpyBackend):
    """Adam with ε added to √v before the bias correction (MXNet's and Keras's form, left unaligned)."""

    name = "eps-on-sqrt-v"

    def _update(self, grads: dict[str, np.ndarray]) -> None:
        if self.optimizer != "adam":
            return super()._update(grads)
        self._optimizer.steps_taken += 1
        t, (beta1, beta2) = self._optimizer.steps_taken, ADAM_BETAS
        for name, param in self._params.items():
            g = grads[name] + self.weight_decay * param
            m, v = self._optimizer.state["m"][name], self._optimizer.state["v"][name]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            param -= self.lr * np.sqrt(1 - beta2**t) / (1 - beta1**t) * m / (np.sqrt(v) + ADAM_EPS)
        return None


def explained(planted: type[Backend], task: str = "linreg", **options: Any) -> Finding:
    problem = get_task(task).make_problem(seed=0, epochs=1, batch_size=10)
    options = {"dtype": "float64", "lr": 0.03, **options}
    backends = {"numpy": NumpyBackend(problem.spec, **options), planted.name: planted(problem.spec, **options)}
    (finding,) = Explainer(problem, backends, options).run()
    return finding


def test_half_mse_is_found_in_the_loss() -> None:
    finding = explained(HalfLoss)
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "loss")
    assert "half-MSE against MSE" in finding.cause


def test_a_wrong_activation_derivative_is_found_in_the_gradient_before_it() -> None:
    finding = explained(WrongTanhDerivative, task="mlp")
    assert (finding.agree, finding.step, finding.stage) == (False, 1, "gradient")
    assert finding.difference is not None and finding.difference.where.startswith("0.")
    assert "the backward of layer 1 (tanh)" in finding.cause


def test_a_scaled_bias_gradient_is_named_with_its_factor() -> None:
    finding = explained(ScaledBiasGradient, task="mlp")
    assert (finding.step, finding.stage) == (1, "gradient")
    assert finding.difference is not None and finding.difference.where == "2.bias[0]"
    assert "only the gradient of 2.bias differs, by a constant factor 1.01" in finding.cause


def test_epsilon_outside_the_bias_correction_is_found_in_the_update() -> None:
    finding = explained(EpsilonOnRawRoot, optimizer="adam", lr=0.01)
    assert (finding.step, finding.stage) == (1, "update")
    assert "1e-08 in numpy and 3.16e-07 = ε/√(1 − β₂ᵗ) at t = 1 in eps-on-sqrt-v: ε outside the bias correction in " \
           "eps-on-sqrt-v" in finding.cause


def test_mxnet_float32_learning_rate_at_float64(cli: RunCli) -> None:
    load_backend("mxnet")
    ran = cli("explain", "--task", "linreg", "--backends", "numpy,mxnet", "--dtype", "float64", "--format", "json")
    assert ran.code == 1, ran.err
    (pair,) = json.loads(ran.out)["pairs"]
    assert (pair["step"], pair["stage"]) == (1, "update")
    assert "the learning rate and the 1/batch-size gradient scale are held in float32 by mxnet" in pair["cause"]
    held = float(np.float32(0.03)) * float(np.float32(0.1)) / (0.03 * 0.1)  # the factor on every update
    assert pair["difference"]["rel_diff"] == pytest.approx(abs(held - 1), rel=1e-3)
    assert pair["largest"] == pair["jump"] and 7 < pair["largest"] < 8  # 7.6× the tolerance, not 0
    assert "every update differs by a constant factor (1 − 7.45e-09)" in pair["cause"]


def test_float32_tells_a_computation_below_the_tolerance_from_rounding(cli: RunCli) -> None:
    """In float32 no stage differs beyond the tolerance from the same start, for MXNet's 32-bit β₂ (a computation
    that differs, 2 % off in the final loss) and for Keras (rounding alike): the float64 replay tells them apart."""
    for name in ("mxnet", "tensorflow"):
        load_backend(name)
    ran = cli("explain", "--task", "classifier", "--dataset", "wine", "--optimizer", "adam", "--backends",
              "numpy,mxnet,tensorflow", "--format", "json")
    assert ran.code == 1, ran.err
    pairs = {(pair["backend_a"], pair["backend_b"]): pair for pair in json.loads(ran.out)["pairs"]}
    computed = pairs[("numpy", "mxnet")]
    assert (computed["agree"], computed["step"], computed["stage"]) == (False, 2, "update")
    assert "replayed in float64 from that start, the update differs by" in computed["replayed"]
    assert "not rounding" in computed["replayed"] and "β₂ = 0.999 is held in float32 by mxnet" in computed["cause"]
    rounding = pairs[("numpy", "tensorflow")]
    assert (rounding["agree"], rounding["step"], rounding["stage"]) == (True, 2, None)
    assert rounding["replayed"] == ("replayed in float64 from the same start, every stage agrees within float64's "
                                    "tolerance too: float32 rounding")


def test_mxnet_adam_beta2_held_in_float32(cli: RunCli) -> None:
    load_backend("mxnet")
    ran = cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--optimizer", "adam", "--lr", "0.01")
    assert ran.code == 1, ran.err
    assert "numpy vs mxnet: differ from step 1" in ran.out
    assert "first stage that differs from the same start: update" in ran.out
    assert "(1 − float32(β₂)) / (1 − β₂): β₂ = 0.999 is held in float32 by mxnet" in ran.out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_silent_where_backends_agree_to_rounding(cli: RunCli, dtype: str) -> None:
    names = [name for name in BACKENDS if name != "mxnet"]  # MXNet's float32 β₂ differs in both dtypes: above
    for name in names:
        load_backend(name)
    ran = cli("explain", "--task", "mlp", "--epochs", "5", "--backends", ",".join(names), "--dtype", dtype,
              "--optimizer", "adam", "--lr", str(2**-7))
    assert ran.code == 0, ran.out + ran.err
    assert ran.out.count(": agree") == len(names) * (len(names) - 1) // 2


@pytest.mark.parametrize("given,message", [
    (["--init", "native"], "explain compares backends from one shared start"),
    (["--seeds", "2"], "explain compares backends from one shared start"),
    (["--backends", "numpy"], "explain needs two backends or more"),
    (["--executor", "process"], "explain steps the backends side by side in this process"),
    (["--curves"], "--curves: explain reports where backends part ways, not curves or plots"),
])
def test_explain_usage_errors(cli: RunCli, given: list[str], message: str) -> None:
    ran = cli("explain", *given)
    assert ran.code == 2 and message in ran.err and ran.err.count("\n") == 1 and ran.out == ""


def test_replay_hooks_round_trip_the_optimiser_state(backend: type[Backend]) -> None:
    problem = get_task("mlp").make_problem(seed=0, epochs=1, batch_size=10, n_samples=60)
    reference = NumpyBackend(problem.spec, dtype="float64", optimizer="adam", lr=0.01)
    model = backend(problem.spec, dtype="float64", optimizer="adam", lr=0.01)
    for each in (reference, model):
        each.set_params(problem.initial_params)
        each.load(problem.X_train, problem.y_train)
        each.step(np.arange(10))
    state = reference.get_optimizer_state()
    model.set_params(reference.get_params())
    model.set_optimizer_state(state)
    assert model.get_optimizer_state()["step"] == 1
    update, after = model.update_for(np.arange(10, 20))
    expected, expected_after = reference.update_for(np.arange(10, 20))
    np.testing.assert_array_equal(model.get_params()["0.weight"], reference.get_params()["0.weight"])  # put back
    for name in expected:  # MXNet's β₂ in float32 moves its update by ~1e-5 relative: checked above
        np.testing.assert_allclose(update[name], expected[name], rtol=1e-4 if backend.name == "mxnet" else 1e-9)
    assert after["step"] == expected_after["step"] == 2 and model.get_optimizer_state()["step"] == 1
    for name in expected:  # MXNet's β₁ in float32 as well
        np.testing.assert_allclose(after["m"][name], expected_after["m"][name],
                                   rtol=1e-4 if backend.name == "mxnet" else 1e-12)
    activations = model.forward_activations(problem.X_train[:3])
    assert [a.shape for a in activations] == [(3, 13), (3, 13), (3, 1)]


def test_a_diverging_run_is_named_without_warnings(cli: RunCli) -> None:
    load_backend("torch")
    ran = cli("explain", "--backends", "numpy,torch", "--lr", "100", "--epochs", "2")
    assert ran.code == 1 and ran.err == ""
    assert "numpy vs torch: the run diverged at step 10: a non-finite loss or parameter in numpy and torch" in ran.out


SMALL = {"n_samples": 80}
REPRO_CASES = {"mlp-adam-huber": ("mlp", SMALL, {"optimizer": "adam", "lr": 0.01, "loss": "huber", "huber_delta": 0.5,
                                                 "weight_decay": 2**-6}),
               "linreg-momentum": ("linreg", SMALL, {"optimizer": "momentum", "momentum": 0.5, "lr": 2**-5}),
               "classifier-adam-cross-entropy": ("classifier", {"dataset": "wine", "hidden": (5,)},
                                                 {"optimizer": "adam", "lr": 0.01, "loss": "cross-entropy"})}


@dataclasses.dataclass
class Replayed:
    """A replay script started from a step's saved start, and the backend that step was taken on."""

    model: Backend
    problem: Any
    batch: np.ndarray
    process: subprocess.Popen[str]


def replay_case(backend: type[Backend], case: str, folder: Path) -> Replayed:
    """Three steps of `case` on `backend` (float64: the optimiser state matters), the fourth's start saved, and
    the framework's standalone script started on it in `folder`, as a user runs it."""
    task, task_settings, settings = REPRO_CASES[case]
    problem = get_task(task).make_problem(seed=0, epochs=1, batch_size=10, **task_settings)
    options = {"dtype": "float64", "momentum": None, "weight_decay": 0.0, "loss": "mse", "huber_delta": 1.0,
               **settings}
    model = backend(problem.spec, **options)
    model.set_params(problem.initial_params)
    model.load(problem.X_train, problem.y_train)
    for batch in problem.epoch_batches[0][:3]:
        model.step(batch)
    batch = problem.epoch_batches[0][3]
    finding = Finding("a", "b", agree=False, replay={"batch": batch, "params": model.get_params(),
                                                     "state": model.get_optimizer_state()})
    np.savez(folder / "step.npz", **bundle_arrays(problem, finding))
    (folder / "replay.py").write_text(script(backend.name, problem, options))
    process = subprocess.Popen([sys.executable, "replay.py"], cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    return Replayed(model, problem, batch, process)


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[type[Backend], str], Replayed]]:
    """A backend's replay scripts, all its cases started at once the first time one is asked for: each script
    is mostly its framework's import, one CPU each, so they overlap instead of waiting in turn."""
    started: dict[tuple[str, str], Replayed] = {}

    def replayed(backend: type[Backend], case: str) -> Replayed:
        if (backend.name, case) not in started:
            for each in REPRO_CASES:
                folder = tmp_path_factory.mktemp(f"replay-{backend.name}-{each}")
                started[(backend.name, each)] = replay_case(backend, each, folder)
        return started[(backend.name, case)]

    try:
        yield replayed
    finally:  # a test that failed before waiting leaves no process behind
        for each in started.values():
            if each.process.poll() is None:
                each.process.kill()
            each.process.communicate()


@pytest.mark.parametrize("case", REPRO_CASES)
def test_the_replay_scripts_print_what_the_backend_computes(backend: type[Backend], case: str,
                                                            replays: Callable[[type[Backend], str], Replayed]) -> None:
    """Each framework's standalone script, from a step's saved start, prints the loss, gradients and updates
    the backend itself computes from that start (float64, three steps in: the optimiser state matters)."""
    replayed = replays(backend, case)
    model, problem, batch = replayed.model, replayed.problem, replayed.batch
    stdout, stderr = replayed.process.communicate(timeout=300)
    assert replayed.process.returncode == 0, stderr
    printed = {" ".join(line.split()[:2]): line.split(None, 2)[-1] for line in stdout.splitlines()}
    loss, grads = model.loss_and_grads(problem.X_train[batch], problem.y_train[batch])
    updates, _ = model.update_for(batch)
    assert float(stdout.split()[1]) == pytest.approx(loss, rel=1e-12)  # the first line: "loss <value>"
    for name in grads:
        shown = np.array(json.loads(printed[f"gradient {name}"].replace(" ", "")), dtype=float)
        np.testing.assert_allclose(shown, grads[name].ravel(), rtol=1e-10, atol=1e-15, err_msg=f"gradient {name}")
        shown = np.array(json.loads(printed[f"update {name}"].replace(" ", "")), dtype=float)
        np.testing.assert_allclose(shown, updates[name].ravel(), rtol=1e-9, atol=1e-15, err_msg=f"update {name}")


def test_explain_writes_a_bundle_whole_and_refuses_a_users_folder(cli: RunCli, tmp_path: Path) -> None:
    load_backend("mxnet")
    out = tmp_path / "bundle"
    ran = cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--out", str(out))
    assert ran.code == 1, ran.err
    assert sorted(p.name for p in out.iterdir()) == [".backend-compare.json", "explain.txt", "numpy-vs-mxnet",
                                                     "report.html"]
    assert sorted(p.name for p in (out / "numpy-vs-mxnet").iterdir()) == [
        "finding.txt", "replay_mxnet.py", "replay_numpy.py", "step.npz"]
    again = cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--out", str(out))
    assert again.code == 1 and (out / "explain.txt").read_text() == ran.out  # a previous bundle is replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    refused = cli("explain", "--backends", "numpy,mxnet", "--out", str(mine))
    assert refused.code == 2 and "holds files that are not an explain bundle (notes.txt)" in refused.err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and refused.out == ""


@pytest.mark.parametrize("users", [{"explain.txt": "my notes", "thesis.tex": "chapter 1"},  # a file of the name
                                   {"numpy-vs-mxnet/analysis.ipynb": "{}"}])  # a bundle the user added to
def test_a_folder_the_suite_cannot_prove_it_wrote_is_never_replaced(cli: RunCli, tmp_path: Path,
                                                                     users: dict[str, str]) -> None:
    out = tmp_path / "notes"
    if any("/" in name for name in users):  # a real bundle first, then the user's file put into it
        assert cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--out", str(out)).code == 1
    for name, text in users.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    refused = cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--out", str(out))
    assert refused.code == 2 and "holds files that are not an explain bundle" in refused.err, refused.err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_backend_that_does_not_declare_the_replay_hooks_is_refused_up_front(monkeypatch: pytest.MonkeyPatch,
                                                                              cli: RunCli) -> None:
    monkeypatch.setattr(NumpyBackend, "replay", False)
    problem = get_task("linreg").make_problem(seed=0, epochs=1)
    with pytest.raises(NotImplementedError, match=r"^explain replays steps with hooks the numpy and other backends "
                                                  r"do not declare \(Backend.replay"):
        Explainer(problem, {"numpy": NumpyBackend(problem.spec), "other": HalfLoss(problem.spec)}, {})
    load_backend("torch")
    ran = cli("explain", "--backends", "numpy,torch")
    assert ran.code == 2 and ran.err == ("compare.py explain: error: explain replays steps with hooks the numpy "
                                         "backend does not declare (Backend.replay, see backends/base.py); compare "
                                         "it with compare.py instead\n")


def test_a_backend_without_the_replay_hooks_it_declares_is_told_which(monkeypatch: pytest.MonkeyPatch,
                                                                      cli: RunCli) -> None:
    monkeypatch.setattr(NumpyBackend, "_optimizer_state", None)
    problem = get_task("linreg").make_problem(seed=0, epochs=1)
    with pytest.raises(NotImplementedError, match="backend 'numpy' has no _optimizer_state hook, which explain's "
                                                  "replay of a step needs"):
        Explainer(problem, {"numpy": NumpyBackend(problem.spec), "other": HalfLoss(problem.spec)}, {}).run()
    monkeypatch.setattr(NumpyBackend, "_penalty", None)  # the objective's hook names the objective, not explain
    with pytest.raises(NotImplementedError, match="has no _penalty hook, which the training objective with weight "
                                                  "decay needs"):
        NumpyBackend(problem.spec, weight_decay=0.1).weight_penalty()
    load_backend("torch")
    ran = cli("explain", "--backends", "numpy,torch")
    assert ran.code == 2 and ran.err.count("\n") == 1 and "has no _optimizer_state hook" in ran.err


def test_explain_formats(cli: RunCli) -> None:
    import io

    import pandas as pd

    load_backend("torch")
    table = pd.read_csv(io.StringIO(cli("explain", "--backends", "numpy,torch", "--format", "csv").out))
    assert list(table["backend_a"]) == ["numpy"] and bool(table["agree"][0])
    markdown = cli("explain", "--backends", "numpy,torch", "--format", "markdown").out
    assert "| numpy vs torch | agree |" in markdown


def test_an_unwritable_bundle_folder_is_refused_before_running(cli: RunCli) -> None:
    ran = cli("explain", "--backends", "numpy,torch", "--out", "/proc/forbidden/bundle")
    assert ran.code == 2 and ran.out == "" and "--out '/proc/forbidden/bundle' cannot be written" in ran.err


def test_no_option_is_taken_from_an_abbreviation_and_explain_helps_with_its_own_examples(cli: RunCli) -> None:
    refused = cli("explain", "--ou", "why", "--backends", "numpy,torch")
    assert (refused.code, refused.out) == (2, "") and "unrecognized arguments: --ou why" in refused.err
    assert "unrecognized arguments: --ep 1" in cli("--ep", "1", "--backends", "numpy").err
    shown = subprocess.run([sys.executable, "compare.py", "explain", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    examples = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("compare.py ")]
    assert shown.returncode == 0 and examples and all(line.startswith("compare.py explain --") for line in examples)


def test_a_bundle_replays_a_third_party_backend_through_its_own_class(tmp_path: Path) -> None:
    """A backend with no standalone script of its framework's gets one that imports its class by name (its
    own code computes the numbers); one whose class cannot be imported so gets the reason in finding.txt."""
    class Unimportable(ScaledBiasGradient):
        name = "unimportable"

    problem = get_task("mlp").make_problem(seed=0, epochs=1, batch_size=10, n_samples=60)
    options = {"dtype": "float64", "optimizer": "sgd", "lr": 0.03, "momentum": None, "weight_decay": 0.0,
               "loss": "mse", "huber_delta": 1.0, "mode": "usual"}
    backends = {name: cls(problem.spec, **options) for name, cls in (("numpy", NumpyBackend), (
        "scaled-bias", ScaledBiasGradient), ("unimportable", Unimportable))}
    findings = Explainer(problem, backends, options).run()
    write_bundle(tmp_path / "why", problem, options, findings, "text", None, backends)
    folder = tmp_path / "why" / "numpy-vs-scaled-bias"
    assert sorted(p.name for p in folder.iterdir()) == ["finding.txt", "replay_numpy.py", "replay_scaled_bias.py",
                                                        "step.npz"]
    process = subprocess.Popen([sys.executable, "replay_scaled_bias.py"], cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stdout, stderr = outcome(process, timeout=300)
    assert process.returncode == 0, stderr
    printed = {" ".join(line.split()[:2]): line.split(None, 2)[-1] for line in stdout.splitlines()}
    (finding,) = [f for f in findings if f.backend_b == "scaled-bias"]
    planted = ScaledBiasGradient(problem.spec, **options)
    planted.set_params(finding.replay["params"])
    rows = finding.replay["batch"]
    _, grads = planted.loss_and_grads(problem.X_train[rows], problem.y_train[rows])
    shown = np.array(json.loads(printed["gradient 2.bias"].replace(" ", "")))
    np.testing.assert_allclose(shown, grads["2.bias"].ravel(), rtol=1e-12)  # 1.01 × numpy's: the planted one
    text = (tmp_path / "why" / "numpy-vs-unimportable" / "finding.txt").read_text()
    assert "run: python replay_numpy.py\nno replay script for unimportable: its backend class tests.test_explain." \
           "test_a_bundle_replays_a_third_party_backend_through_its_own_class.<locals>.Unimportable is defined " \
           "where a fresh Python cannot import it by name; step.npz holds the step's start" in text


def test_the_findings_table_shows_the_step_and_how_far_beyond_the_tolerance() -> None:
    """The HTML Findings row of a pair that differs at its first step: the step as a step (not 1.000e+00) and
    the multiple of the tolerance at it (not the 0 of the steps before it)."""
    import re

    from backend_compare.comparison.html import explain_page

    finding = explained(HalfLoss)
    header = {"task": "linreg", "settings": {"batch_size": 10}, "options": {"dtype": "float64", "optimizer": "sgd"}}
    page = explain_page(header, [finding], "text")
    row = re.sub(r"(<[^>]+>)+", "|", page.split("table-findings", 1)[1]).split("|")
    cells = [cell for cell in row if cell.strip()]
    at = cells.index("numpy vs half-loss")
    assert cells[at + 1 : at + 4] == ["differ", "1", "loss"]
    assert float(cells[at + 4]) == pytest.approx(finding.jump, rel=1e-3) and finding.jump > 1e6


def test_a_backend_class_in_a_module_no_import_finds_gets_a_reason() -> None:
    from backend_compare.comparison.repro import _importable

    loose = type("Loose", (), {"__module__": "no_module_of_that_name"})
    assert _importable("backend", loose) == ("its backend class no_module_of_that_name.Loose is in a module a fresh "
                                             "Python cannot import by name")
