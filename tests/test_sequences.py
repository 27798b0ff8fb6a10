"""Sequences: recurrent layers and embeddings against each framework's own, the conventions where they part (bias
counts, Flax's GRU without a recurrent bias, Keras's gate order), and the sequence task on the sunspot numbers
against its AR baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.layers import GRU, LSTM, RNN, Embedding, Flatten, Input, Linear
from backend_compare.layers.text import parse_layers
from backend_compare.tasks import get_task


def test_the_recurrent_layers_in_text_chain_their_widths() -> None:
    layers = parse_layers("lstm(8, sequences=True), gru(4, bias=input), linear(1)", (10, 3))
    assert layers[1] == LSTM(3, 8, sequences=True) and layers[2] == GRU(8, 4, bias="input")
    with pytest.raises(ValueError, match=r"^layer 2 lstm\(4\): lstm takes sequences of shape \(steps, features\); "
                                         r"it follows an output of shape \(8,\)$"):
        parse_layers("lstm(8), lstm(4), linear(1)", (10, 3))
    with pytest.raises(ValueError, match="lstm bias must be one of two, input, none; received: 'one'"):
        parse_layers("lstm(8, bias=one), linear(1)", (10, 3))
    assert parse_layers("embedding(20, 4), gru(6), linear(2)", (7,))[1] == Embedding(20, 4)


@pytest.mark.parametrize("name,kind,bias,reason", [
    ("jax", LSTM, "two", "Flax NNX's cells keep one bias vector (bias=input)"),
    ("jax", GRU, "none", "Flax NNX's cells always keep a bias (bias=input)"),
    ("tensorflow", LSTM, "two", "keras.layers.LSTM keeps one bias vector (bias=input)"),
    ("tensorflow", GRU, "input", "keras.layers.GRU(reset_after=True), torch's form, keeps both biases (one (2, 3H) "
                                 "variable)"),
])
def test_a_bias_count_a_framework_cannot_hold_is_refused_by_name(name: str, kind: type, bias: str,
                                                                   reason: str) -> None:
    with pytest.raises(ValueError, match=rf"^the {name} backend cannot build layer 1 {kind.kind}\(2, 3"):
        get_backend(name)([Input((4, 2)), kind(2, 3, bias=bias), Linear(3, 1)])
    try:
        get_backend(name)([Input((4, 2)), kind(2, 3, bias=bias), Linear(3, 1)])
    except ValueError as err:
        assert reason in str(err)


def test_torchs_gru_bias_inside_the_reset_is_what_flax_cannot_hold() -> None:
    """torch's b_hn sits inside r ⊙ (W_hn h + b_hn); Flax NNX's GRUCell has no recurrent bias (its dense_h has
    use_bias=False): a torch GRU moves to Flax only with b_hh = 0, and b_hn ≠ 0 changes the output."""
    spec = [Input((5, 2)), GRU(2, 3), Linear(3, 1)]
    X = np.random.default_rng(0).normal(size=(4, 5, 2))
    torch_gru, held = get_backend("torch")(spec, dtype="float64"), get_backend("torch")(spec, dtype="float64")
    params = torch_gru.get_params()
    held.set_params({**params, "1.bias_hh": np.zeros_like(params["1.bias_hh"])})
    flax = get_backend("jax")([Input((5, 2)), GRU(2, 3, bias="input"), Linear(3, 1)], dtype="float64")
    flax.set_params({name: value for name, value in params.items() if name != "1.bias_hh"})
    np.testing.assert_allclose(flax.predict(X), held.predict(X), rtol=1e-12)
    assert np.abs(torch_gru.predict(X) - held.predict(X)).max() > 1e-3


def test_keras_keeps_the_gru_gates_as_z_r_h_and_both_biases_in_one_variable() -> None:
    model = get_backend("tensorflow")([Input((3, 2)), GRU(2, 4), Linear(4, 1)], dtype="float64")
    weight = np.arange(12 * 2, dtype=np.float64).reshape(12, 2)  # rows r (0–3), z (4–7), n (8–11)
    bias_ih, bias_hh = np.arange(12.0), 100 + np.arange(12.0)
    model.set_params({**model.get_params(), "1.weight_ih": weight, "1.bias_ih": bias_ih, "1.bias_hh": bias_hh})
    cell = model._model.layers[1].cell
    kernel, bias = cell.kernel.numpy(), cell.bias.numpy()  # (in, 3H) and (2, 3H), in Keras's order
    np.testing.assert_array_equal(kernel[:, :4], weight[4:8].T)  # z first
    np.testing.assert_array_equal(kernel[:, 4:8], weight[0:4].T)
    np.testing.assert_array_equal(bias[0], np.r_[bias_ih[4:8], bias_ih[0:4], bias_ih[8:]])
    np.testing.assert_array_equal(bias[1], np.r_[bias_hh[4:8], bias_hh[0:4], bias_hh[8:]])
    for name, value in {"1.weight_ih": weight, "1.bias_ih": bias_ih, "1.bias_hh": bias_hh}.items():
        np.testing.assert_array_equal(model.get_params()[name], value)


@pytest.mark.parametrize("name", ["torch", "mxnet", "jax", "tensorflow"])
def test_an_embedding_then_an_lstm_trains_as_numpy_does(name: str) -> None:
    spec = [Input((6,)), Embedding(9, 3), LSTM(3, 4, sequences=True, bias="input"), Flatten(), Linear(24, 2)]
    rng = np.random.default_rng(2)
    X, y = rng.integers(0, 9, size=(10, 6)).astype(np.float64), rng.normal(size=(10, 2))
    ours, theirs = get_backend("numpy")(spec, dtype="float64"), get_backend(name)(spec, dtype="float64")
    theirs.set_params(ours.get_params())
    for model in (ours, theirs):
        model.fit(X, y, epochs=3, batch_size=4)
    tolerance = 1e-8 if name == "mxnet" else 1e-12  # MXNet: lr in float32 (mxnet-float32-hyperparameters)
    for key, value in ours.get_params().items():
        np.testing.assert_allclose(theirs.get_params()[key], value, rtol=tolerance, atol=tolerance, err_msg=key)


def test_a_token_id_out_of_range_is_one_line_naming_its_position() -> None:
    model = get_backend("jax")([Input((4,)), Embedding(6, 3), Flatten(), Linear(12, 1)], dtype="float32")
    with pytest.raises(ValueError, match=r"^X must hold token ids 0 to 5 for layer 1 embedding\(6, 3\); received "
                                         r"6 at row 1, position 3$"):
        model.predict(np.array([[0, 1, 2, 3], [0, 1, 2, 6]]))
    with pytest.raises(ValueError, match=r"received 1\.5 at row 0, position 1"):
        model.predict(np.array([[0, 1.5, 2, 3]]))
    with pytest.raises(ValueError, match=r"^layer 2 embedding\(6, 3\) takes token ids, the model's input: it must "
                                         r"come first$"):
        get_backend("torch")([Input((4, 3)), Linear(3, 3), Embedding(6, 3)])


def test_the_sequence_task_holds_out_the_last_years_and_trains_alike_on_every_backend(cli) -> None:
    problem = get_task("sequence").make_problem(seed=0, window=10)
    std, mean = problem.settings["standardized"]["std"], problem.settings["standardized"]["mean"]
    assert problem.y_val[-1, 0] * std + mean == pytest.approx(2.9)  # 2008, the last year, held out
    assert len(problem.X_train) + len(problem.X_val) == 299 and problem.X_train.shape[1:] == (10, 1)
    ran = cli("--task", "sequence", "--dtype", "float64", "--epochs", "3", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    for row in report["parity"]:
        assert row["verdict"] == "within tolerance", row
        if "mxnet" not in (row["backend_a"], row["backend_b"]):
            assert row["max_abs_param_diff"] < 1e-12, row
    baseline = next(row for row in report["losses"] if row["backend"] == "AR(10) least-squares")
    assert 0 < baseline["final_train_loss"] < 0.2  # standardised: AR(10) explains most of the variance


@pytest.mark.parametrize("arguments,message", [
    (("--window", "0"), "window must be an integer from 1 to 154 (years); received: 0"),
    (("--cell", "lstmx"), "argument --cell: invalid choice: 'lstmx'"),
    (("--layers", "lstm(8), relu"), "the last layer (relu) gives outputs of shape (8,); the target has 1 column(s)"),
])
def test_bad_sequence_settings_are_one_line_and_exit_2(cli, arguments: tuple[str, ...], message: str) -> None:
    ran = cli("--task", "sequence", *arguments)
    assert ran.code == 2 and message in ran.err and ran.err.count("\n") == 1, ran.err


def test_native_init_lists_each_frameworks_recurrent_defaults() -> None:
    model = get_backend("tensorflow")([Input((4, 2)), LSTM(2, 3, bias="input"), Linear(3, 1)], dtype="float64")
    model.native_init(0)
    bias = model.get_params()["1.bias_ih"]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])  # unit_forget_bias
    assert "orthogonal recurrent kernels" in model.native_init_text()
    torch_rnn = get_backend("torch")([Input((4, 2)), RNN(2, 3, bias="input"), Linear(3, 1)], dtype="float64")
    torch_rnn.native_init(0)
    assert torch_rnn._model[1].inner.bias_hh_l0.abs().max().item() == 0.0  # held at zero, native init too


def test_the_tokens_task_labels_by_its_rule_and_trains_alike_on_every_backend(cli) -> None:
    problem = get_task("tokens").make_problem(seed=3, n_samples=200)
    X = np.concatenate([problem.X_train, problem.X_val])
    y = np.concatenate([problem.y_train, problem.y_val])[:, 0]
    assert X.shape == (200, 12) and set(np.unique(X)) <= set(range(6))
    np.testing.assert_array_equal(y, ((X == 1).sum(axis=1) > (X == 2).sum(axis=1)).astype(float))
    assert ((X == 1).sum(axis=1) != (X == 2).sum(axis=1)).all()  # no ties: every label is the rule's
    ran = cli("--task", "tokens", "--dtype", "float64", "--epochs", "2", "--n-samples", "300", "--format", "json")
    assert ran.code == 0, ran.err
    for row in json.loads(ran.out)["parity"]:
        assert row["verdict"] == "within tolerance", row
    bad = cli("--task", "tokens", "--vocabulary", "2")
    assert bad.code == 2 and bad.err == ("compare.py: error: vocabulary must be an integer from 3 to 10000; "
                                         "received: 2\n"), bad.err


@pytest.mark.parametrize("steps", [1, 50])
@pytest.mark.parametrize("kind", [RNN, GRU, LSTM])
def test_gradients_through_time_match_central_differences_and_every_backend(kind: type, steps: int) -> None:
    """NumPy's hand-derived backpropagation through time against central differences (float64), then each
    framework's own gradients against NumPy's, for one step and for fifty."""
    rng = np.random.default_rng(steps)
    X, y = rng.normal(size=(3, steps, 2)), rng.normal(size=(3, 1))
    for bias in ("input", "none"):
        spec = [Input((steps, 2)), kind(2, 3, bias=bias), Linear(3, 1)]
        ours = get_backend("numpy")(spec, dtype="float64")
        params = {name: rng.normal(0.0, 0.6, size=value.shape) for name, value in ours.get_params().items()}
        ours.set_params(params)
        loss, grads = ours.loss_and_grads(X, y)
        for name in ("1.weight_ih", "1.weight_hh", *(("1.bias_ih",) if bias == "input" else ())):
            numeric = np.zeros_like(params[name])
            for where in np.ndindex(numeric.shape):
                for sign in (1, -1):
                    moved = {**params, name: params[name].copy()}
                    moved[name][where] += sign * 1e-6
                    ours.set_params(moved)
                    numeric[where] += sign * ours.loss_and_grads(X, y)[0] / 2e-6
            np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=f"{kind.kind} {name}")
        ours.set_params(params)
        for name in ("torch", "mxnet", "jax", "tensorflow"):
            try:
                theirs = get_backend(name)(spec, dtype="float64")
            except ValueError:
                continue  # a bias count the framework cannot hold: refused by name (tested above)
            theirs.set_params(params)
            loss_b, grads_b = theirs.loss_and_grads(X, y)
            assert abs(loss_b - loss) <= 1e-12 * abs(loss), (name, kind.kind, steps)
            for key, value in grads.items():
                np.testing.assert_allclose(grads_b[key], value, rtol=1e-9, atol=1e-12, err_msg=f"{name} {key}")


def test_the_memory_check_counts_every_step_a_recurrent_layer_keeps(cli) -> None:
    ran = cli("--task", "sequence", "--hidden", "20000", "--window", "150", "--backends", "numpy,torch")
    assert ran.code == 2 and "set by --hidden (layer 1 lstm(1, 20000, bias=input): 48,020,000 values per row)" \
        in ran.err and ran.err.count("\n") == 1, ran.err


class ForgetfulGate:
    """A port whose LSTM's forget-gate bias gradient is 1 % too large: the rows H…2H of bias_ih."""

    @staticmethod
    def make() -> type:
        from backend_compare.backends.numpy_backend import NumpyBackend

        class Planted(NumpyBackend):
            name = "planted-forget-gate"

            def _loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
                loss, grads = super()._loss_and_grads(X, y)
                bias = grads["1.bias_ih"].copy()
                bias[4:8] *= 1.01
                return loss, {**grads, "1.bias_ih": bias}

        return Planted


def test_explain_names_the_gate_whose_rows_part_first() -> None:
    from backend_compare.comparison.explain import Explainer

    problem = get_task("sequence").make_problem(seed=0, epochs=1, hidden=(4,), window=5)
    options = {"dtype": "float64", "lr": 0.1}
    backends = {"numpy": get_backend("numpy")(problem.spec, **options),
                "planted": ForgetfulGate.make()(problem.spec, **options)}
    (finding,) = Explainer(problem, backends, options).run()
    assert finding.stage == "gradient" and finding.difference is not None
    assert finding.difference.where.startswith("1.bias_ih[") and finding.difference.where.endswith(
        "(the forget gate's rows)"), finding.difference.where


def test_a_file_of_sequences_or_token_ids_is_read_and_a_wrong_one_refused(cli, tmp_path) -> None:
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(200) * 0.3) + 0.1 * rng.normal(size=200)
    X = np.stack([series[i:i + 6] for i in range(190)])[:, :, None]
    np.savez(tmp_path / "seqs.npz", X=np.concatenate([X, X**2], axis=2), y=series[6:196])
    ran = cli("--task", "sequence", "--data", str(tmp_path / "seqs.npz"), "--epochs", "2", "--dtype", "float64",
              "--backends", "numpy,torch", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["settings"]["sequences"] == [6, 2] and report["parity"][0]["verdict"] == "within tolerance"
    assert any(row["backend"] == "linear least-squares" for row in report["losses"])
    ids = rng.integers(0, 5, size=(120, 7))
    np.savez(tmp_path / "ids.npz", X=ids, y=(ids.sum(axis=1) > 14).astype(int))
    np.savez(tmp_path / "half.npz", X=ids + 0.5, y=np.zeros(120))
    np.savez(tmp_path / "four.npz", X=X[:, :, :, None], y=series[6:196])
    tokens = cli("--task", "tokens", "--data", str(tmp_path / "ids.npz"), "--epochs", "1", "--backends", "numpy,jax",
                 "--format", "json")
    assert tokens.code == 0 and json.loads(tokens.out)["settings"]["vocabulary"] == 5, tokens.err
    for arguments, message in (
            (("--task", "tokens", "--data", str(tmp_path / "half.npz")),
             "X must hold token ids, whole numbers from 0 to 9999999; received 2.5 at row 0, position 0"),
            (("--task", "tokens", "--data", str(tmp_path / "ids.npz"), "--length", "5"),
             "length applies to the drawn sequences; --data's are the examples as they are"),
            (("--task", "sequence", "--data", str(tmp_path / "four.npz")),
             "X must be sequences of equal length (n, steps, features) and y (n,) or (n, 1) targets; received X "
             "(190, 6, 1, 1)"),
            (("--task", "sequence", "--data", str(tmp_path / "seqs.npz"), "--window", "4"),
             "window applies to the sunspot numbers")):
        bad = cli(*arguments)
        assert bad.code == 2 and message in bad.err and bad.err.count("\n") == 1, bad.err


def test_the_default_gru_trains_alike_on_every_backend_that_holds_its_bias(cli) -> None:
    """bias=input, the count Flax's GRUCell has: Keras's GRU cannot hold it (both biases or none) and is skipped by
    name; the four others agree to float64's rounding after 3 epochs."""
    ran = cli("--task", "sequence", "--cell", "gru", "--dtype", "float64", "--epochs", "3", "--format", "json")
    assert ran.code == 0, ran.err
    assert "skipping backend 'tensorflow': cannot build layer 1 gru(1, 16, bias=input)" in ran.err
    report = json.loads(ran.out)
    assert len(report["parity"]) == 6
    for row in report["parity"]:
        if "mxnet" not in (row["backend_a"], row["backend_b"]):
            assert row["max_abs_param_diff"] < 1e-12 and row["max_abs_step_loss_diff"] < 1e-12, row
        assert row["verdict"] == "within tolerance", row


def test_the_tokens_task_refuses_what_it_cannot_label_or_hold(cli, tmp_path) -> None:
    for arguments, message in (
            (("--layers", "lstm(4), linear(2)"), "lstm takes sequences of shape (steps, features)"),
            (("--layers", "linear(2)"), "the tokens task's --layers must start with embedding(VOCABULARY, WIDTH)"),
            (("--layers", "embedding(3, 4), gru(4, bias=input), linear(2)"),
             "X must hold token ids 0 to 2 for the first layer embedding(3, 4); received 5.0"),
            (("--cell", "gru", "--layers", "embedding(6, 4), lstm(4, bias=input), linear(2)"),
             "--cell applies only to --task sequence or tokens without --layers (write the cell among the layers)"),
            (("--vocabulary", "10000", "--length", "1"), "of the drawn sequences hold as many 1s as 2s (no label): "
                                                       "give a smaller --vocabulary or a larger --length")):
        bad = cli("--task", "tokens", *arguments)
        assert bad.code == 2 and message in bad.err and bad.err.count("\n") == 1, (arguments, bad.err)
    ids = np.tile(np.arange(5), (100, 2))
    labels = np.repeat([0, 1], 50)  # sorted by label: a split in file order would hold out one class alone
    np.savez(tmp_path / "sorted.npz", X=ids, y=labels)
    problem = get_task("tokens").make_problem(data=str(tmp_path / "sorted.npz"))
    assert len(np.unique(problem.y_val)) == 2
    big = np.full((4, 3), 2**24 + 1)
    np.savez(tmp_path / "big.npz", X=big, y=np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"X must hold token ids, whole numbers from 0 to 9999999; received "
                                         r"16777217\.0 at row 0, position 0"):
        get_task("tokens").make_problem(data=str(tmp_path / "big.npz"), dtype="float32")
    model = get_backend("numpy")([Input((3,)), Embedding(2**24 + 2, 1), Flatten(), Linear(3, 1)], dtype="float32")
    with pytest.raises(ValueError, match=r"token id 16777217\.0 at row 0 cannot be held exactly in float32"):
        model.predict(big.astype(np.float64))


def test_a_sweep_over_the_sequence_length_keeps_its_points_and_judges_no_convergence_by_a_baseline(tmp_path) -> None:
    import pandas as pd

    from backend_compare.comparison.convergence import convergence
    from backend_compare.comparison.run import train

    out = tmp_path / "sweep"
    ran = __import__("subprocess").run(
        [__import__("sys").executable, "compare.py", "sweep", "--task", "tokens", "--length", "3,4", "--epochs", "1",
         "--n-samples", "100", "--backends", "numpy", "--executor", "inline", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=__import__("pathlib").Path(__file__).resolve().parents[1])
    assert ran.returncode == 0, ran.stderr
    jobs = pd.read_parquet(out / "jobs.parquet")
    assert sorted(jobs["length"]) == [3, 4], jobs
    problem = get_task("sequence").make_problem(epochs=1)
    options = {"dtype": "float64", "loss": "mse", "huber_delta": 1.0, "weight_decay": 0.0, "lr": 1e-4}
    result = train(get_backend("numpy")(problem.spec, **options), problem, "shared", 0)
    assert convergence(problem, options, result) == (None, "")  # the AR row is a baseline, not this model's optimum


def test_the_pytest_plugin_holds_a_recurrent_port_to_parity() -> None:
    from backend_compare.backends.testing import assert_backends_agree

    spec = [Input((6,)), Embedding(9, 4), GRU(4, 5, bias="input"), Linear(5, 1)]
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 9, size=(24, 6)).astype(np.float64), rng.normal(size=(24, 1))
    start = get_backend("numpy")(spec, dtype="float64").get_params()

    def trained(backend: type) -> dict[str, np.ndarray]:
        model = backend(spec, dtype="float64", optimizer="adam", lr=0.01)
        model.set_params(start)
        return model.fit(X, y, epochs=2, batch_size=8).get_params()

    assert set(assert_backends_agree(trained, backends=["numpy", "torch", "jax"])) == {"numpy", "torch", "jax"}

    def broken(backend: type) -> dict[str, np.ndarray]:
        found = trained(backend)
        return {**found, "2.bias_ih": found["2.bias_ih"] * (1.01 if backend.name == "jax" else 1.0)}

    with pytest.raises(AssertionError, match=r"2\.bias_ih"):
        assert_backends_agree(broken, backends=["numpy", "jax"])


def test_the_sequence_tasks_word_their_refusals_for_what_they_are(cli) -> None:
    for arguments, message in ((("--task", "sequence", "--relative"), "this run trains a model of layers"),
                               (("--task", "sequence", "--loss", "cross-entropy"),
                                "--loss cross-entropy does not suit --task sequence: its targets take mse"),
                               (("--task", "tokens", "--relative"), "this run is --task tokens, a classification")):
        ran = cli(*arguments)
        assert ran.code == 2 and message in ran.err, ran.err
