"""Classification: the tasks, cross-entropy and its conventions in every framework, the convex reference, the
reports, and the reference figure on digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend_compare.backends import get_backend
from backend_compare.backends.spec import Linear, make_spec, mlp_spec
from backend_compare.comparison import softmax_reference
from backend_compare.comparison.run import NO_FINITE_OPTIMUM, reference_result, train
from backend_compare.tasks import get_task

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-3.0, 4.0, 1.0], [1e3, 0.0, -1e3], [0.0, 0.0, 0.0]])
LABELS = np.array([0, 2, 1, 2, 1])


def _identity_model(backend: type, dtype: str = "float64") -> object:
    """A 3→3 linear layer holding the identity: its output is its input, so X are the logits."""
    model = backend(make_spec([Linear(3, 3)]), dtype=dtype, loss="cross-entropy")
    model.set_params({"0.weight": np.eye(3), "0.bias": np.zeros(3)})
    return model


def test_every_framework_computes_the_same_cross_entropy_on_logits(backend: type) -> None:
    """Integer labels, logits up to ±1000 (a naive exp overflows): the stable log-softmax of each framework."""
    expected = float(np.mean(np.logaddexp.reduce(LOGITS, axis=1) - LOGITS[np.arange(5), LABELS]))
    model = _identity_model(backend)
    assert model.loss(LOGITS, LABELS) == pytest.approx(expected, rel=1e-15)
    assert model.loss(LOGITS, LABELS[:, None].astype(float)) == pytest.approx(expected, rel=1e-15)  # (n, 1) floats


def test_labels_are_checked_at_the_boundary(backend: type) -> None:
    model = _identity_model(backend)
    for bad, said in ((np.array([0, 1, 3, 0, 1]), "class indices 0 to 2"), (np.array([0, 1, 0.5, 0, 1]), "0.5"),
                      (np.array([0, -1, 0, 0, 1]), "-1"), (np.zeros((5, 3)), "shape (5,) or (5, 1)")):
        with pytest.raises(ValueError, match="y must hold") as raised:
            model.loss(LOGITS, bad)
        assert said in str(raised.value)
    with pytest.raises(ValueError, match="one output per class, at least 2"):
        backend(make_spec([Linear(3, 1)]), loss="cross-entropy")


def test_the_conventions_that_differ_give_other_numbers() -> None:
    """What the README's conventions table says, measured: the defaults that silently compute something else."""
    torch, nn = pytest.importorskip("torch"), pytest.importorskip("torch.nn")
    logits, labels = torch.from_numpy(LOGITS), torch.from_numpy(LABELS)
    ours = float(nn.CrossEntropyLoss()(logits, labels))
    # torch: a float target of the logits' shape is taken for class probabilities (soft labels)
    onehot = nn.functional.one_hot(labels, 3).double()
    assert float(nn.CrossEntropyLoss()(logits, onehot)) == pytest.approx(ours, rel=1e-15)
    assert float(nn.CrossEntropyLoss(reduction="sum")(logits, labels)) == pytest.approx(5 * ours, rel=1e-15)
    assert float(nn.CrossEntropyLoss(label_smoothing=0.1)(logits, labels)) != pytest.approx(ours, rel=1e-3)
    keras = pytest.importorskip("keras")
    as_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    as_probabilities = keras.losses.SparseCategoricalCrossentropy(dtype="float64")  # Keras's default
    assert float(as_logits(LABELS, LOGITS)) == pytest.approx(ours, rel=1e-15)
    assert float(as_probabilities(LABELS, LOGITS)) != pytest.approx(ours, rel=1e-2)
    mx = pytest.importorskip("backend_compare.backends.mxnet_backend")  # numpy.bool restored before mxnet
    gluon, nd = mx.gluon, mx.nd
    per_example = gluon.loss.SoftmaxCrossEntropyLoss()(nd.array(LOGITS, dtype="float64"),
                                                       nd.array(LABELS, dtype="float64"))
    assert per_example.shape == (5,)  # Gluon's losses are per example: Trainer.step(batch) makes the mean
    assert float(per_example.mean().asscalar()) == pytest.approx(ours, rel=1e-15)
    # Gluon's from_logits=True means "already log-probabilities", the opposite of Keras's flag
    log_probabilities = gluon.loss.SoftmaxCrossEntropyLoss(from_logits=True)(nd.array(LOGITS, dtype="float64"),
                                                                              nd.array(LABELS, dtype="float64"))
    assert float(log_probabilities.mean().asscalar()) != pytest.approx(ours, rel=1e-2)


def test_the_split_is_scikit_learns_stratified_split_and_standardised_on_training_rows() -> None:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    problem = get_task("softmax").make_problem(dataset="wine", seed=3)
    wine = load_wine()
    X_train, _, y_train, y_val = train_test_split(wine.data, wine.target, test_size=36, stratify=wine.target,
                                                  random_state=3)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    np.testing.assert_allclose(problem.X_train, (X_train - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(problem.y_train[:, 0], y_train)
    np.testing.assert_array_equal(np.bincount(problem.y_val[:, 0].astype(int)), np.bincount(y_val))
    assert problem.classes == ["class_0", "class_1", "class_2"]
    assert problem.settings["standardized"]["mean"] == pytest.approx(mean.tolist())
    assert problem.spec == make_spec([Linear(13, 3)])
    assert get_task("classifier").make_problem(dataset="iris", hidden=(7,)).spec == mlp_spec(4, (7,), 3, "tanh")


def test_the_reference_is_the_convex_optimum_scikit_learn_finds() -> None:
    """Penalised (unique optimum): scikit-learn's lbfgs at C = 1/(n·wd) without an intercept is the same
    objective; unpenalised on data that no direction separates, the same minimum loss."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    labels = np.digitize(X[:, 0] + X[:, 1] + rng.normal(size=300), [-0.5, 0.5])  # 3 overlapping classes
    ours = softmax_reference.solve(X, labels, 3, bias=False, weight_decay=0.01)
    theirs = LogisticRegression(C=1 / (300 * 0.01), fit_intercept=False, tol=1e-12, max_iter=10_000).fit(X, labels)
    np.testing.assert_allclose(ours.params["0.weight"], theirs.coef_, rtol=1e-6, atol=1e-7)
    assert ours.gradient_norm < 1e-10
    free = softmax_reference.solve(X, labels, 3, bias=True, weight_decay=0.0)
    theirs = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, labels)
    theirs_params = {"0.weight": theirs.coef_, "0.bias": theirs.intercept_}
    assert free.separated == []
    assert softmax_reference.mean_cross_entropy(X, labels, free.params) == pytest.approx(
        softmax_reference.mean_cross_entropy(X, labels, theirs_params), rel=1e-9)


def test_separable_data_have_no_finite_optimum_and_say_which_classes() -> None:
    iris = get_task("softmax").make_problem(dataset="iris")
    row = reference_result(iris, {"weight_decay": 0.0})
    assert row is not None and row.status == NO_FINITE_OPTIMUM and not row.params
    assert "setosa|versicolor, setosa|virginica" in row.note and "--weight-decay" in row.note
    digits = get_task("softmax").make_problem(dataset="digits")
    separated = softmax_reference.solve(digits.X_train, digits.y_train[:, 0], 10, bias=True, weight_decay=0.0)
    assert len(separated.separated) == 45  # every pair: the training split is separable outright
    penalised = reference_result(iris, {"weight_decay": 1e-3})
    assert penalised is not None and penalised.status == "ok" and penalised.confusion["val"].sum() == 30


def test_softmax_on_digits_reaches_scikit_learns_validation_accuracy_on_every_backend(cli) -> None:
    """The reference figure: the default run's validation accuracy within 1 point of scikit-learn's own
    LogisticRegression (default C=1) on the same split, on every backend; the reference row beside them."""
    from sklearn.linear_model import LogisticRegression

    problem = get_task("softmax").make_problem(dataset="digits")
    sklearn_accuracy = LogisticRegression(max_iter=10_000).fit(problem.X_train, problem.y_train[:, 0]).score(
        problem.X_val, problem.y_val[:, 0])
    ran = cli("--task", "softmax", "--dataset", "digits", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["reference"] == "L2 cross-entropy optimum"
    backends = [row for row in report["summary"]]
    assert len(backends) >= 2
    for row in backends:
        assert abs(row["val_accuracy"] - sklearn_accuracy) <= 0.01, (row["backend"], row["val_accuracy"])
    reference = next(row for row in report["losses"] if row["backend"] == report["reference"])
    assert abs(reference["val_accuracy"] - sklearn_accuracy) <= 0.01
    assert {row["class"] for row in report["classes"]} == {str(k) for k in range(10)}
    matrix = [row for row in report["confusion"] if row["backend"] == "numpy" and row["split"] == "val"]
    assert len(matrix) == 100 and sum(row["count"] for row in matrix) == len(problem.X_val)


def test_the_printed_report_has_accuracy_per_class_and_the_reference_note(cli) -> None:
    ran = cli("--task", "softmax", "--dataset", "iris", "--backends", "numpy,torch", "--weight-decay", "0")
    assert ran.code == 0, ran.err
    assert "val_accuracy" in ran.out and "Validation accuracy per class" in ran.out
    assert "cross-entropy optimum no finite optimum" in " ".join(ran.out.split())
    assert "cross-entropy optimum: the training split separates classes setosa|versicolor" in ran.out


@pytest.mark.parametrize("given,message", [
    (["--task", "softmax", "--loss", "mse"], "--loss mse does not suit --task softmax: its labels take cross-entropy"),
    (["--task", "linreg", "--loss", "cross-entropy"], "--loss cross-entropy does not suit --task linreg"),
    (["--task", "softmax", "--relative"], "--relative applies only to a linear regression"),
    (["--task", "linreg", "--dataset", "iris"], "--dataset applies only to --task softmax or classifier"),
    (["--task", "softmax", "--hidden", "4"], "--hidden applies only to an MLP"),
])
def test_classification_usage_errors(cli, given: list[str], message: str) -> None:
    ran = cli(*given)
    assert ran.code == 2 and message in ran.err and "Traceback" not in ran.err


def test_a_users_file_of_text_labels(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    names = np.array(["cat", "dog", "eel"])[np.digitize(X[:, 0], [-0.4, 0.4])]
    lines = ["height,weight,animal"] + [f"{a:.6f},{b:.6f},{name}" for (a, b), name in zip(X, names, strict=True)]
    (tmp_path / "animals.csv").write_text("\n".join(lines) + "\n")
    ran = cli("--task", "classifier", "--data", str(tmp_path / "animals.csv"), "--target", "animal",
              "--backends", "numpy", "--hidden", "4", "--epochs", "3", "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert report["settings"]["classes"] == ["cat", "dog", "eel"] and report["settings"]["target"] == "animal"
    (tmp_path / "one.csv").write_text("a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,y\n")
    ran = cli("--task", "softmax", "--data", str(tmp_path / "one.csv"))
    assert ran.code == 2 and "at least 2 rows of every class; 1 class(es) have one: 'y'" in ran.err
    np.savez(tmp_path / "halves.npz", X=np.ones((6, 2)), y=np.array([0, 1, 0.5, 1, 0, 1]))
    ran = cli("--task", "softmax", "--data", str(tmp_path / "halves.npz"))
    assert ran.code == 2 and "halves.npz' y[2]: class labels must be whole numbers or text; received 0.5" in ran.err
    (tmp_path / "blank.csv").write_text("a,label\n1,x\n\n2,\n3,y\n")
    ran = cli("--task", "softmax", "--data", str(tmp_path / "blank.csv"))
    assert ran.code == 2 and "blank.csv' line 4, column 'label': the class label is empty" in ran.err


def test_every_backend_trains_a_classifier_in_parity_with_numpy(backend: type) -> None:
    """The done-when run, at float64: wine, Adam, an MLP classifier, from the same start and batches."""
    problem = get_task("classifier").make_problem(dataset="wine", epochs=3)
    options = {"dtype": "float64", "optimizer": "adam", "lr": 2**-7, "loss": "cross-entropy"}
    ours = train(get_backend("numpy")(problem.spec, **options), problem)
    theirs = train(backend(problem.spec, **options), problem)
    tolerance = {"rtol": 1e-3, "atol": 1e-5} if backend.name == "mxnet" else {"rtol": 1e-9, "atol": 1e-12}
    for name in ours.params:  # mxnet: its float32 β₂ (the allowance mxnet-adam-beta2)
        np.testing.assert_allclose(theirs.params[name], ours.params[name], **tolerance, err_msg=name)
    np.testing.assert_array_equal(theirs.confusion["val"], ours.confusion["val"])


def test_native_mode_trains_every_backend_from_its_own_initialiser(cli) -> None:
    ran = cli("--task", "classifier", "--dataset", "iris", "--init", "native", "--epochs", "5", "--format", "json")
    assert ran.code == 0, ran.err
    assert all(row["val_accuracy"] is not None for row in json.loads(ran.out)["summary"])


def test_explain_finds_mxnets_adam_beta2_on_a_classifier_and_nothing_between_the_others(cli) -> None:
    ran = cli("explain", "--task", "classifier", "--dataset", "wine", "--hidden", "5", "--epochs", "2",
              "--optimizer", "adam", "--dtype", "float64", "--backends", "numpy,torch,mxnet")
    assert ran.code == 1, ran.err  # explain exits 1 when a pair differs
    assert "numpy vs torch: agree" in ran.out
    assert "β₂ = 0.999 is held in float32 by mxnet" in ran.out


def test_a_regression_target_is_refused_and_many_classes_keep_their_tables_small(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "ids.npz", X=rng.normal(size=(2500, 2)), y=np.repeat(np.arange(1250), 2))
    ran = cli("--task", "softmax", "--data", str(tmp_path / "ids.npz"))
    assert ran.code == 2
    assert "the target holds 1,250 distinct labels; classification here takes at most 1,000" in ran.err
    np.savez(tmp_path / "sixty.npz", X=rng.normal(size=(300, 2)), y=np.repeat(np.arange(60), 5))
    ran = cli("--task", "softmax", "--data", str(tmp_path / "sixty.npz"), "--backends", "numpy", "--epochs", "1",
              "--format", "json")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert len(report["classes"]) == 2 * 60 and report["confusion"] == []  # numpy and the optimum; no 60² cells
