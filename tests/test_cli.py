"""compare.py as a user runs it (in this process; tests/test_examples.py starts real ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend_compare import cli as compare
from backend_compare.backends import BACKENDS
from tests.conftest import RunCli


def test_json_summary_has_every_backend(cli: RunCli) -> None:
    result = cli("--task", "linreg", "--format", "json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [row["backend"] for row in report["summary"]] == list(BACKENDS)
    for row in report["summary"]:
        assert {"backend", "final_train_loss", "final_val_loss", "max_abs_param_error", "seconds"} <= set(row)
        assert row["max_abs_param_error"] < 5e-3
        assert row["seconds"] > 0
    assert [row["backend"] for row in report["params"][::3]] == [*BACKENDS, "least-squares"]
    assert len(report["params"]) == 3 * (len(BACKENDS) + 1)  # w[0], w[1], b; and the exact optimum
    assert [row["backend"] for row in report["losses"]] == [*BACKENDS, "least-squares"]
    assert report["settings"]["true_w"] == [2.0, -3.4] and report["reference"] == "least-squares"


def test_table_format_prints_both_tables(cli: RunCli) -> None:
    result = cli("--backends", "numpy", "--true-w=1,2,3", "--true-b", "0.5", "--epochs", "2")
    assert result.code == 0, result.err
    assert "Parameters" in result.out and "Losses" in result.out
    assert "0.weight[0,2]" in result.out
    assert "abs_error" in result.out and "final_val_loss" in result.out


@pytest.mark.parametrize("fmt,marker", [("markdown", "backend |"), ("csv", "backend,status,note,final_train_loss")])
def test_other_formats(cli: RunCli, fmt: str, marker: str) -> None:
    result = cli("--backends", "numpy", "--format", fmt)
    assert result.code == 0, result.err
    assert marker in result.out


def json_report(cli: RunCli, *args: str) -> dict:
    result = cli(*args, "--format", "json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_loss_option_reaches_the_backends(cli: RunCli) -> None:
    mse = json_report(cli, "--backends", "numpy,torch", "--epochs", "1")
    half = json_report(cli, "--backends", "numpy,torch", "--epochs", "1", "--loss", "half-mse")
    assert half["options"]["loss"] == "half-mse"
    for a, b in zip(mse["losses"][:2], half["losses"][:2], strict=True):
        assert b["initial_loss"] == pytest.approx(a["initial_loss"] / 2, rel=1e-6)


def test_mlp_reports_function_error_not_parameters(cli: RunCli) -> None:
    report = json_report(cli, "--task", "mlp", "--backends", "numpy", "--epochs", "3", "--hidden", "8,8",
                         "--activation", "relu")
    assert report["settings"]["hidden"] == [8, 8] and report["reference"] is None
    # every learned value saved (1·8 + 8 + 8·8 + 8 + 8·1 + 1), printed only on request: nothing to compare with
    assert len(report["params"]) == 97 and report["on_request"] == ["params"]
    assert "Parameters" not in cli("--task", "mlp", "--backends", "numpy", "--epochs", "3").out
    row = report["summary"][0]
    assert row["max_abs_param_error"] is None and row["function_error"] > 0
    assert report["function"][0]["initial_function_error"] > 0


def test_celsius_mlp_and_native_init_say_which_initialiser(cli: RunCli) -> None:
    report = json_report(cli, "--task", "celsius", "--model", "mlp", "--epochs", "5", "--init", "native")
    assert {row["backend"] for row in report["init"]} == set(BACKENDS)
    assert any("kaiming_uniform" in row["initialisation and batches"] for row in report["init"])
    assert any("Uniform(-0.07, 0.07)" in row["initialisation and batches"] for row in report["init"])


def test_native_mode_shows_no_parity_and_says_why(cli: RunCli) -> None:
    two = ("--backends", "numpy,torch")  # a pair is all a parity table needs; the report, not the frameworks, is tested
    report = json_report(cli, "--task", "linreg", *two, "--init", "native", "--curves")
    assert report["parity"] == [] and report["trajectory"] == []
    table = cli("--task", "linreg", *two, "--init", "native").out
    assert "Parity" not in table.split("No parity table")[0]
    assert "No parity table: with --init native the backends start from different parameters" in table
    assert "Parity: largest absolute difference" in cli("--task", "linreg", *two).out


def test_own_data_file_with_mlp(cli: RunCli, tmp_path: Path) -> None:
    data = tmp_path / "xy.csv"
    data.write_text("x1,x2,y\n" + "".join(f"{i},{i % 3},{2 * i - i % 3}\n" for i in range(20)))
    report = json_report(cli, "--data", str(data), "--model", "mlp", "--backends", "numpy", "--epochs", "2")
    assert report["task"] == "data" and report["settings"]["features"] == 2 and report["settings"]["rows"] == 20


def test_seeds_in_either_order_give_the_same_rows_with_every_optimiser(cli: RunCli) -> None:
    """Backends built for the first seed are reused: loading parameters must restart their optimiser, or the
    second seed would start from the first one's momentum and the order of the seeds would show."""
    timing = ("seconds", "compile_seconds", "us_per_step", "steps_per_s")

    def numbers(report: dict) -> list:
        return [{k: v for k, v in row.items() if not k.startswith(timing) and k != "note"}  # notes: per seed, in order
                for table in ("summary", "params", "losses", "parity") for row in report[table]]

    for optimizer in ("momentum", "adam"):
        forward = json_report(cli, "--seed", "1,0", "--optimizer", optimizer, "--lr", "0.01")
        backward = json_report(cli, "--seed", "0,1", "--optimizer", optimizer, "--lr", "0.01")
        # the means bit for bit; the spreads to rounding (their sums depend on the order of the seeds)
        for a, b in zip(numbers(forward), numbers(backward), strict=True):
            assert a.keys() == b.keys(), optimizer
            for key in a:
                same = a[key] == b[key] or (key.endswith("_std") and a[key] == pytest.approx(b[key], rel=1e-9))
                assert same, (optimizer, key, a, b)


# Every option that applies only to some runs, given where it does not: one rule, one line, exit 2.
NOT_APPLYING = [
    (["--task", "celsius", "--activation", "relu"], "--activation applies only to an MLP"),
    (["--task", "celsius", "--hidden", "4"], "--hidden applies only to an MLP"),
    (["--task", "celsius", "--model", "linear", "--hidden", "4"], "this run trains a linear model"),
    (["--huber-delta", "0.5"], "--huber-delta applies only with --loss huber; this run uses --loss mse"),
    (["--dtype", "bfloat16", "--precision", "mixed-float16"],
     "--precision applies only with --dtype float32 (it keeps the parameters in float32); this run uses --dtype "
     "bfloat16"),
    (["--loss", "l1", "--label-smoothing", "0.1"],
     "--label-smoothing applies only with --loss cross-entropy; this run uses --loss l1"),
    (["--class-weights", "1,2"], "--class-weights applies only with --loss cross-entropy; this run uses --loss mse"),
    (["--optimizer", "adam", "--momentum", "0.5"],
     "--momentum applies only with --optimizer sgd, momentum or nesterov"),
    (["--task", "mlp", "--relative"], "--relative applies only to a linear regression"),
    (["--task", "softmax", "--relative"], "--relative applies only to a linear regression (it compares with the exact "
                                          "optimum); this run is --task softmax, a classification"),
    (["--task", "celsius", "--dataset", "iris"], "--dataset applies only to --task softmax or classifier"),
    (["--task", "classifier", "--loss", "huber"], "--loss huber does not suit --task classifier: its labels take "
                                                  "cross-entropy"),
    (["--task", "mlp", "--true-w", "1"], "--true-w applies only to --task linreg; this run is --task mlp"),
    (["--task", "mlp", "--true-b", "1"], "--true-b applies only to --task linreg"),
    (["--task", "linreg", "--model", "mlp"], "--model applies only to --task celsius or data"),
    (["--task", "linreg", "--function", "sin"], "--function applies only to --task mlp"),
    (["--task", "celsius", "--inputs", "2"], "--inputs applies only to --task mlp"),
    (["--task", "celsius", "--noise", "0.1"], "--noise applies only to --task linreg or mlp"),
    (["--task", "celsius", "--n-samples", "10"], "--n-samples applies only to --task linreg or mlp"),
    (["--task", "linreg", "--data", "x.csv"], "--data applies only to --task data"),
    (["--task", "celsius", "--target", "y"],
     "--target applies only to --task data or softmax or classifier; this run is --task celsius"),
    (["--task", "linreg", "--header"], "--header applies only to --task data"),
    (["--task", "linreg", "--no-header"], "--header applies only to --task data"),
    (["--task", "mlp", "--standardize"], "--standardize applies only to --task data"),
    (["--task", "celsius", "--batchnorm", "biased"], "--batchnorm applies only to --task mlp or classifier"),
    (["--task", "cnn", "--bias"], "--bias applies only to --task linreg or mlp or celsius or data or softmax or "
                                  "classifier without --layers (write bias=False in a layer); this run is --task cnn"),
    (["--task", "mlp", "--layers", "linear(3), relu, linear(1)", "--no-bias"], "this run gives --layers"),
    (["--task", "cnn", "--hidden", "4"], "--hidden applies only to an MLP (--task mlp, or --model mlp) or the "
                                         "recurrent layers of --task sequence and tokens, without --layers; this run "
                                         "is --task cnn"),
    (["--task", "linreg", "--layers", "linear(1)"], "--layers applies only to --task mlp or classifier or cnn or "
                                                    "sequence or tokens; this run is --task linreg"),
    (["--task", "mlp", "--cell", "gru"], "--cell applies only to --task sequence or tokens without --layers (write the "
                                         "cell among the layers); this run is --task mlp"),
    (["--task", "cnn", "--window", "5"], "--window applies only to --task sequence; this run is --task cnn"),
    (["--task", "sequence", "--vocabulary", "5"], "--vocabulary applies only to --task tokens; this run is --task "
                                                  "sequence"),
    (["--task", "sequence", "--length", "5"], "--length applies only to --task tokens; this run is --task sequence"),
    (["--task", "mlp", "--layers", "linear(1)", "--batchnorm", "biased"],
     "--batchnorm applies only to --task mlp or classifier without --layers (write batchnorm among the layers); "
     "this run gives --layers"),
    (["--init", "native", "--check"], "--check applies only with --init shared"),
    (["--executor", "inline", "--threads", "1"], "--threads applies only with --executor process"),
    (["--executor", "inline", "--timeout", "5"],
     "--timeout applies only with --executor process; this run runs inline"),
    (["--val-fraction", "0.1", "--val-rows", "1"], "--val-rows applies only without --val-fraction (the rows it names "
                                                   "are the split); this run gives --val-fraction"),
    (["--init", "native", "--init-from", "x.json"], "--init-from applies only with --init shared (every backend "
                                                    "starts from the file); this run uses --init native"),
]


@pytest.mark.parametrize("args,message", NOT_APPLYING, ids=[" ".join(a) for a, _ in NOT_APPLYING])
def test_an_option_that_does_not_apply_is_refused(cli: RunCli, args: list[str], message: str) -> None:
    result = cli("--backends", "numpy", *args)
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result.err
    assert message in result.err


def test_every_conditional_option_has_a_refusal_test() -> None:
    tested = {arg.lstrip("-").replace("-", "_") for args, _ in NOT_APPLYING for arg in args if arg.startswith("--")}
    assert set(compare.OPTION_RULES) <= tested


def test_options_that_apply_are_accepted(cli: RunCli) -> None:
    for args in (["--loss", "huber", "--huber-delta", "0.5"], ["--optimizer", "momentum", "--momentum", "0.5"],
                 ["--task", "softmax", "--dataset", "iris", "--label-smoothing", "0.1", "--epochs", "2"],
                 ["--optimizer", "nesterov", "--schedule", "cosine:warmup=3", "--clip", "global-norm:1",
                  "--epochs", "2"],
                 ["--task", "celsius", "--model", "mlp", "--hidden", "4", "--activation", "relu", "--epochs", "2"],
                 ["--relative", "--epochs", "1"]):
        assert cli("--backends", "numpy", *args, "--format", "json").code == 0, args


def test_a_backend_listed_twice_is_refused(cli: RunCli) -> None:
    result = cli("--backends", "numpy,numpy")
    assert result.code == 2 and "received numpy more than once in 'numpy,numpy'" in result.err


@pytest.mark.parametrize("args,message", [
    (["--true-b", "1e39"], "labels made by true_w, true_b and noise reach 1e+39, beyond what float32 can square"),
    (["--true-w=1e20,1"], "labels made by true_w, true_b and noise reach 3.9e+20, beyond what float32 can square"),
    (["--noise", "1e200", "--dtype", "float64"], "reach 3.01e+200, beyond what float64 can square"),
    (["--noise", "1e30"], "beyond what float32 can square (1.84e+19): every loss would overflow; use float64"),
    (["--task", "mlp", "--noise", "1e300", "--dtype", "float64"], "labels made by noise reach"),
])
def test_values_beyond_the_dtype_are_usage_errors(cli: RunCli, args: list[str], message: str) -> None:
    result = cli("--backends", "numpy", *args)
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result.err
    assert message in result.err


def test_data_file_beyond_float32_is_a_usage_error(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, X=np.array([[1.0], [2.0], [1e30]]), y=np.array([1.0, 2.0, 3.0]))
    result = cli("--data", str(path), "--backends", "numpy")
    assert result.code == 2 and f"features in data file {str(path)!r} reach 1e+30" in result.err
    assert cli("--data", str(path), "--backends", "numpy", "--dtype", "float64", "--epochs", "1").code in (0, 1)


@pytest.mark.parametrize("args,message", [
    (["--task", "data"], "--task data needs --data FILE"),
    (["--data", "/nonexistent.csv"], "data file '/nonexistent.csv' does not exist"),
    (["--hidden", "0"], "argument --hidden: expected comma-separated positive integers"),
])
def test_task_option_errors(cli: RunCli, args: list[str], message: str) -> None:
    result = cli("--backends", "numpy", *args)
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err


def test_the_program_names_itself(cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    assert compare.main(["--lr", "0"], prog="backend-compare") == 2
    assert capsys.readouterr().err.startswith("backend-compare: error: lr must be")
    assert cli("--lr", "0").err.startswith("compare.py: error: lr must be")


def test_main_runs_from_a_thread_other_than_the_main_one(capsys: pytest.CaptureFixture[str]) -> None:
    """Research code may call it from a worker thread, where Python forbids installing signal handlers."""
    import threading

    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(compare.main(["--backends", "numpy", "--epochs", "1"])))
    worker.start()
    worker.join()
    assert codes == [0] and "\nLosses\n" in capsys.readouterr().out


@pytest.mark.parametrize("args,option", [
    (["--epochs", "100000000000"], "--epochs"), (["--n-samples", "10000000000"], "--n-samples"),
    (["--task", "mlp", "--hidden", "1000000,1000000"], "--hidden"), (["--task", "mlp", "--inputs", "10000000000"],
                                                                     "--inputs"),
    (["--true-w=" + ",".join(["1"] * 100000), "--n-samples", "1000000"], "--n-samples × --true-w")])
def test_sizes_beyond_the_machine_are_one_line_naming_the_option(cli: RunCli, args: list[str], option: str) -> None:
    result = cli("--backends", "numpy", *args)  # returning at all shows nothing of that size was built
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1, result.err
    assert "does not fit in this machine's memory" in result.err and result.err.strip().endswith(f"set by {option}")
