"""The tasks reach what they promise on every backend, in shared and native mode."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from backend_compare.comparison.run import train
from backend_compare.tasks import get_task
from backend_compare.tasks.celsius import TRUE_B, TRUE_W


def test_mlp_default_cuts_function_error_tenfold(backend) -> None:
    task = get_task("mlp")
    problem = task.make_problem(seed=0)
    result = train(backend(problem.spec, lr=task.defaults["mlp"]["lr"]), problem)
    assert result.final_function_error is not None and result.initial_function_error is not None
    assert result.final_function_error * 10 <= result.initial_function_error, backend.name


def test_celsius_linear_lands_within_two_percent_of_least_squares(backend) -> None:
    problem = get_task("celsius").make_problem(seed=0)
    design = np.hstack([problem.X_train, np.ones((len(problem.X_train), 1))])
    (w, b), *_ = np.linalg.lstsq(design, problem.y_train[:, 0], rcond=None)
    result = train(backend(problem.spec, lr=1e-2), problem)
    assert result.params["0.weight"][0, 0] == pytest.approx(w, rel=0.02)
    assert result.params["0.bias"][0] == pytest.approx(b, rel=0.02)
    assert problem.truth is not None
    assert pytest.approx(TRUE_W * 10 + TRUE_B) == 5 / 9 * (100 - 32)  # 100 °F is 37.8 °C on the scaled input


def test_celsius_data_and_split() -> None:
    problem = get_task("celsius").make_problem(seed=3)
    assert len(problem.X_train) == 9 and len(problem.X_val) == 2
    assert problem.X_train.max() <= 8.19 + 1e-12  # scaled by 0.1
    assert [len(problem.epoch_batches[epoch]) for epoch in range(2)] == [1, 1]  # full batch
    mlp = get_task("celsius").make_problem(model="mlp", epochs=2)
    assert mlp.truth is None and len(mlp.spec) == 3


@pytest.mark.parametrize("hidden,activation", [((32, 32), "relu"), ((4,), "sigmoid")])
def test_mlp_spec_follows_options(hidden: tuple[int, ...], activation: str) -> None:
    problem = get_task("mlp").make_problem(hidden=hidden, activation=activation, inputs=3, function="teacher")
    assert [getattr(layer, "out_features", getattr(layer, "name", None)) for layer in problem.spec] == \
        [x for h in hidden for x in (h, activation)] + [1]
    assert problem.X_grid is not None and problem.X_grid.shape[1] == 3


def test_same_seed_same_problem_other_seed_other_problem() -> None:
    make = get_task("mlp").make_problem
    a, b, c = make(seed=4), make(seed=4), make(seed=5)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.epoch_batches[1][0], b.epoch_batches[1][0])
    assert not np.array_equal(a.X_train, c.X_train)


def test_native_mode_uses_each_frameworks_own_init_and_loader(backend) -> None:
    problem = get_task("linreg").make_problem(seed=0, epochs=2)
    first = train(backend(problem.spec), problem, init="native", seed=7)
    again = train(backend(problem.spec), problem, init="native", seed=7)
    other = train(backend(problem.spec), problem, init="native", seed=8)
    shared = train(backend(problem.spec), problem)
    np.testing.assert_array_equal(first.step_losses, again.step_losses)  # deterministic
    assert not np.array_equal(first.step_losses, other.step_losses)
    assert not np.array_equal(first.step_losses, shared.step_losses)
    assert first.init != "shared" and first.final_val_loss < 1e-3

    model = backend(problem.spec)
    batches = model.native_batches(10, 4, 2, seed=1)
    for epoch in batches:
        assert [len(batch) for batch in epoch] == [4, 4, 2]
        assert sorted(np.concatenate(epoch).tolist()) == list(range(10))
    assert model.native_batches(10, 4, 2, seed=1)[1][0].tolist() == batches[1][0].tolist()


def test_torch_native_init_is_nn_linear_default_and_leaves_global_rng() -> None:
    from backend_compare.backends import mlp_spec
    from tests.conftest import load_backend

    model = load_backend("torch")(mlp_spec(3, (), 2, "tanh"))
    import torch  # loaded: the backend imported it
    state = torch.random.get_rng_state()
    model.native_init(11)
    assert torch.equal(state, torch.random.get_rng_state())
    torch.manual_seed(11)
    reference = torch.nn.Linear(3, 2)
    np.testing.assert_array_equal(model.get_params()["0.weight"], reference.weight.detach().numpy())
    np.testing.assert_array_equal(model.get_params()["0.bias"], reference.bias.detach().numpy())
    batches = model.native_batches(20, 5, 1, seed=2)[0]
    loader = torch.utils.data.DataLoader(range(20), batch_size=5, shuffle=True,
                                         generator=torch.Generator().manual_seed(2))
    assert [b.tolist() for b in batches] == [b.tolist() for b in loader]


def test_mxnet_native_init_is_gluon_default_and_restores_numpy_rng() -> None:
    from backend_compare.backends import mlp_spec
    from tests.conftest import load_backend

    model = load_backend("mxnet")(mlp_spec(50, (), 40, "tanh"))
    model.native_init(0)
    weight, bias = model.get_params()["0.weight"], model.get_params()["0.bias"]
    assert np.abs(weight).max() <= 0.07 and np.abs(weight).max() > 0.06 and not bias.any()  # Uniform(0.07)
    state = np.random.get_state()[1].copy()
    model.native_batches(30, 7, 2, seed=3)
    np.testing.assert_array_equal(state, np.random.get_state()[1])


def test_every_task_declares_each_keyword_a_user_may_give() -> None:
    from backend_compare.tasks import TASKS

    framework_given = {"seed", "epochs", "batch_size", "dtype"}  # the run sets these itself
    for name in TASKS:
        task = get_task(name)
        keywords = set(inspect.signature(task.make_problem).parameters) - framework_given
        assert {option.name for option in task.options} == keywords, name


def test_a_task_declaring_an_option_its_make_problem_lacks_is_refused_when_made() -> None:
    from backend_compare.tasks import Task, TaskOption

    linreg = get_task("linreg")
    with pytest.raises(TypeError, match="task 'bad' declares options its make_problem does not take: slope"):
        Task(name="bad", description="", make_problem=linreg.make_problem, defaults=linreg.defaults,
             default_model="linear", data_shape=linreg.data_shape, options=(TaskOption("slope", "", float),))
