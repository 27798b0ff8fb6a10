"""A run of several seeds keeps each seed's own rows beside the means and standard deviations it prints."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend_compare.cli import run
from tests.conftest import RunCli


def test_each_seeds_results_are_kept_and_give_the_means_printed(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ran = cli("--task", "linreg", "--epochs", "1", "--seeds", "3", "--backends", "numpy,torch", "--out", str(out))
    assert ran.code == 0, ran.err
    report = json.loads((out / "results.json").read_text())
    for key in ("summary", "losses", "params", "parity"):
        per_seed = pd.DataFrame(report["by_seed"][key])
        assert sorted(set(per_seed["seed"])) == [0, 1, 2] and per_seed.columns[0] == "seed"
        assert len(pd.read_csv(out / f"{key}_by_seed.csv")) == len(per_seed)
    per_seed = pd.DataFrame(report["by_seed"]["summary"])
    combined = pd.DataFrame(report["summary"]).set_index("backend")
    for metric in ("final_train_loss", "final_val_loss", "max_abs_param_error", "us_per_step"):
        stats = per_seed.groupby("backend")[metric].agg(["mean", "std"])
        np.testing.assert_allclose(stats["mean"], combined.loc[stats.index, metric], rtol=1e-12)
        np.testing.assert_allclose(stats["std"], combined.loc[stats.index, f"{metric}_std"], rtol=1e-9)
    params = pd.DataFrame(report["by_seed"]["params"])
    learned = params.groupby(["backend", "parameter"], sort=False)["learned"].mean()
    np.testing.assert_allclose(learned.to_numpy(), [row["learned"] for row in report["params"]], rtol=1e-12)
    assert "by_seed" not in json.loads(cli("--task", "linreg", "--epochs", "1", "--backends", "numpy",
                                           "--format", "json").out)  # one seed: its rows are the tables


def test_a_signal_leaves_out_the_seeds_no_row_of_which_began(cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.contextmanager
    def interrupted(kind: str, **_: object) -> Iterator[Callable[..., None]]:
        def execute(*_: object) -> None:
            raise KeyboardInterrupt  # before any row finished
        yield execute

    monkeypatch.setattr(run, "executor", interrupted)
    measured: list[object] = []
    monkeypatch.setattr(run, "run_noise", lambda *args: measured.append(args))
    ran = cli("--task", "linreg", "--epochs", "1", "--seeds", "3", "--backends", "numpy,torch", "--format", "json")
    assert ran.code == 130, ran.err
    report = json.loads(ran.out)
    assert report["seeds"] == [0] and [row["status"] for row in report["summary"]] == ["interrupted"] * 2
    assert measured == []  # nothing trained once stopped, the noise of a pair beyond tolerance neither
