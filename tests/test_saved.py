"""Saved runs: whole or absent, never into a user's folder, readable by the user; diff compares like with like."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend_compare import cli as compare
from backend_compare.comparison import saved
from backend_compare.comparison.report import FORMATS
from tests.conftest import RunCli

ROOT = Path(__file__).resolve().parents[1]


def save(cli: RunCli, out: Path, *args: str) -> None:
    result = cli("--backends", "numpy", "--epochs", "1", "--out", str(out), *args)
    assert result.code == 0, result.err


def test_out_into_a_folder_of_other_files_is_refused_and_nothing_touched(cli: RunCli, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    result = cli("--backends", "numpy", "--out", str(folder))
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1
    assert "holds files that are not a backend-compare run (thesis.tex)" in result.err
    assert [p.name for p in folder.iterdir()] == ["thesis.tex"]
    assert (folder / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in cli("--backends", "numpy", "--out", str(tmp_path / "file")).err


def test_a_previous_run_is_replaced_whole(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    save(cli, out, "--task", "mlp")
    assert (out / "function.csv").exists()
    save(cli, out, "--task", "linreg")
    assert not (out / "function.csv").exists()  # no stale file of the mlp run beside the linreg one
    assert json.loads((out / "results.json").read_text())["task"] == "linreg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging or old folder left


def test_a_run_into_a_previous_run_with_a_foreign_file_is_refused(cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    save(cli, out)
    (out / "notes.txt").write_text("mine")
    assert cli("--backends", "numpy", "--out", str(out)).code == 2
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    (out / "report.md").write_text("my own report, under the run's name")  # the user's edit of a file of ours
    (out / "function.csv").write_text("a table of mine")  # a run file's name the run did not write
    assert cli("--backends", "numpy", "--out", str(out)).code == 2
    assert (out / "function.csv").read_text() == "a table of mine"


REPLACE_AS_USER = """
import os, sys
from pathlib import Path
from backend_compare.comparison.saved import remove_tree
if os.geteuid() == 0:  # root deletes whatever the permissions say: be someone they hold back
    os.setgid(65534)
    os.setuid(65534)
remove_tree(Path(sys.argv[1]))
"""


def test_a_previous_folder_with_read_only_folders_inside_leaves_nothing_behind(tmp_path: Path) -> None:
    """What replacing a run, bundle or sweep does with the previous folder: nothing of it stays, hidden or not."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="backend-compare-old-"))  # where another user may go
    try:
        (top / "old" / "locked").mkdir(parents=True)
        (top / "old" / "locked" / "results.json").write_text("{}")
        (top / "old" / "unreadable").mkdir()
        (top / "old" / "unreadable" / "a.csv").write_text("x")
        if os.geteuid() == 0:
            for path in [top, *top.rglob("*")]:
                os.chown(path, 65534, 65534)
        top.chmod(0o777)
        (top / "old" / "locked").chmod(0o500)  # read-only, as an archived copy may be
        (top / "old" / "unreadable").chmod(0o000)
        ran = subprocess.run([sys.executable, "-c", REPLACE_AS_USER, str(top / "old")], capture_output=True,
                             text=True, cwd=ROOT, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert list(top.iterdir()) == []
    finally:
        for path in top.rglob("*"):
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(top, ignore_errors=True)


def test_files_follow_the_users_umask(cli: RunCli, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        save(cli, tmp_path / "run")
        cli("--backends", "numpy", "--epochs", "1", "--plot", str(tmp_path / "p.png"))
    finally:
        os.umask(previous)
    for path in [tmp_path / "run", *(tmp_path / "run").iterdir(), tmp_path / "p.png"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path.name, oct(mode))


def test_an_interrupted_save_leaves_the_previous_run(cli: RunCli, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    save(cli, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(saved, "render", interrupted)  # Ctrl-C while the new run's files are being written
    result = cli("--backends", "numpy", "--epochs", "2", "--out", str(out))
    assert result.code == 130 and "Traceback" not in result.err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_full_disk_is_one_line_and_the_tables_are_still_printed(cli: RunCli, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    result = cli("--backends", "numpy", "--epochs", "1", "--out", str(tmp_path / "run"))
    assert result.code == 1 and "\nLosses\n" in result.out
    assert result.err.strip() == ("compare.py: error: the results could not be saved: No space left on device; "
                                  "nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_readme_outputs_are_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "runs/before/results.json", "curves.png"], cwd=ROOT,
                             capture_output=True, text=True)
    assert ignored.stdout.split() == ["runs/before/results.json", "curves.png"], ignored.stderr


def doctor(run: Path, copy: Path, edit: object) -> Path:
    shutil.copytree(run, copy)
    report = json.loads((copy / "results.json").read_text())
    edit(report)  # type: ignore[operator]
    (copy / "results.json").write_text(json.dumps(report))
    return copy


def test_diff_refuses_runs_of_different_settings(cli: RunCli, tmp_path: Path) -> None:
    save(cli, tmp_path / "a")
    save(cli, tmp_path / "b", "--lr", "0.01")
    save(cli, tmp_path / "c", "--dtype", "float64")
    result = cli("diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.code == 2 and result.err.count("\n") == 1
    assert "the runs differ in 1 setting(s)" in result.err and "options.lr: 0.03 vs 0.01" in result.err
    assert "options.dtype: float32 vs float64" in cli("diff", str(tmp_path / "a"), str(tmp_path / "c")).err
    forced = cli("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--force")
    assert forced.code in (0, 1) and "settings differ: --force" in forced.out


def test_diff_calls_rounding_equal_and_seed_noise_within_noise(cli: RunCli, tmp_path: Path) -> None:
    save(cli, tmp_path / "a", "--backends", "numpy,torch")
    ulp_scale = doctor(tmp_path / "a", tmp_path / "b",
                       lambda r: r["parity"][0].update(max_abs_param_diff=r["parity"][0]["max_abs_param_diff"] + 4e-7))
    result = cli("diff", str(tmp_path / "a"), str(ulp_scale))
    assert result.code == 0 and "WORSE" not in result.out and "equal" in result.out

    save(cli, tmp_path / "s", "--seeds", "3")

    def nudge(report: dict) -> None:  # a rise well inside the spread of three seeds
        row = report["summary"][0]
        row["final_val_loss"] += 0.5 * row["final_val_loss_std"]
    noisy = cli("diff", str(tmp_path / "s"), str(doctor(tmp_path / "s", tmp_path / "t", nudge)))
    assert noisy.code == 0 and "within noise" in noisy.out

    def regress(report: dict) -> None:  # far outside it
        row = report["summary"][0]
        row["final_val_loss"] += 100 * row["final_val_loss_std"] + 1.0
    worse = cli("diff", str(tmp_path / "s"), str(doctor(tmp_path / "s", tmp_path / "u", regress)))
    assert worse.code == 1 and "numpy final_val_loss" in worse.err


def test_diff_counts_a_backend_that_stopped_finishing_as_a_regression(cli: RunCli, tmp_path: Path) -> None:
    save(cli, tmp_path / "a")
    failed = doctor(tmp_path / "a", tmp_path / "b",
                    lambda r: r["summary"][0].update(status="diverged at epoch 1, step 3 (last finite loss 1e30)"))
    result = cli("diff", str(tmp_path / "a"), str(failed))
    assert result.code == 1 and "numpy status: diverged at epoch 1" in result.err


@pytest.mark.parametrize("content", ["", "[]", '{"summary": 3}', "{" * 100000, '{"task": "linreg"}', "\x00\xff"])
def test_show_and_diff_refuse_a_damaged_results_file(cli: RunCli, tmp_path: Path, content: str) -> None:
    save(cli, tmp_path / "a")
    (tmp_path / "a" / "results.json").write_bytes(content.encode("latin-1"))
    for args in (["show", str(tmp_path / "a")], ["diff", str(tmp_path / "a"), str(tmp_path / "a")]):
        result = cli(*args)
        assert result.code == 2 and result.err.count("\n") == 1 and "results.json" in result.err, result.err


def test_show_refuses_a_fifo_without_blocking(cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    os.mkfifo(tmp_path / "a" / "results.json")
    result = cli("show", str(tmp_path / "a"))
    assert result.code == 2 and "is not a regular file" in result.err


def test_ctrl_c_while_saving_says_exactly_what_is_on_disk(cli: RunCli, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(saved, "render", interrupted)  # the plot is written, then the run folder is interrupted
    plot = tmp_path / "p.png"
    result = cli("--backends", "numpy", "--epochs", "1", "--plot", str(plot), "--out", str(tmp_path / "run"))
    assert result.code == 130 and "\nLosses\n" in result.out
    assert result.err.strip() == f"compare.py: interrupted while saving; written whole: {plot}; nothing else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


# ---- generated edits of a real results.json: show and diff answer in one line or work, never crash ----

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=6)
EDIT_CASES = 200


def edited(report: Any, draw: st.DrawFn) -> Any:
    """`report` with one random edit somewhere inside: a key removed, or a value replaced."""
    if not isinstance(report, (dict, list)) or not report or draw(st.integers(0, 3)) == 0:
        return draw(JSON_VALUES)
    keys = list(report) if isinstance(report, dict) else list(range(len(report)))
    key = draw(st.sampled_from(keys))
    copy = dict(report) if isinstance(report, dict) else list(report)
    if isinstance(copy, dict) and draw(st.booleans()) and draw(st.booleans()):
        del copy[key]
    else:
        copy[key] = edited(report[key], draw)  # type: ignore[index]
    return copy


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real saved runs with every section a run writes, small: show and diff validate the whole file against
    the schema, whose time grows with its rows (inline: the run's workers are not what is under test here)."""
    folder = tmp_path_factory.mktemp("saved")
    runs = {}
    for name, args in {"linreg": ["--seeds", "2", "--curves", "--relative"], "mlp": ["--task", "mlp"]}.items():
        compare.main(["--executor", "inline", "--backends", "numpy,torch", "--epochs", "2", "--n-samples", "100",
                      *args, "--out", str(folder / name), "--quiet"])
        runs[name] = json.loads((folder / name / "results.json").read_text())
    return runs


@settings(max_examples=EDIT_CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), which=st.sampled_from(["linreg", "mlp"]), fmt=st.sampled_from(FORMATS))
def test_generated_edits_of_results_json_never_crash_show_or_diff(
        saved_runs: dict[str, Any], tmp_path: Path, data: st.DataObject, which: str, fmt: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    original = saved_runs[which]
    for _ in range(data.draw(st.integers(1, 3))):
        original = edited(original, data.draw)
    run = tmp_path / f"edited-{which}-{fmt}"
    run.mkdir(exist_ok=True)
    (run / "results.json").write_text(json.dumps(original))
    clean = tmp_path / f"clean-{which}"
    clean.mkdir(exist_ok=True)
    (clean / "results.json").write_text(json.dumps(saved_runs[which]))
    for args in (["show", str(run), "--format", fmt], ["diff", str(clean), str(run), "--force"],
                 ["diff", str(run), str(clean)]):
        capsys.readouterr()
        code = compare.main(args, prog="compare.py")
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (args, err)
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("compare.py: error: "), err


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
def test_a_results_file_holding_infinity_or_nan_is_refused_in_one_line(saved_runs: dict[str, Any], tmp_path: Path,
                                                                        cli: RunCli, constant: str) -> None:
    """Python's json reads them (a run never writes them: a missing number is null), and printing the run as
    JSON would then fail: the file is refused as it is read."""
    folder = tmp_path / "run"
    folder.mkdir()
    text = json.dumps(saved_runs["linreg"]).replace('"true_b": 4.2', f'"true_b": {constant}')
    (folder / "results.json").write_text(text)
    result = cli("show", str(folder), "--format", "json")
    assert result.code == 2 and f"cannot be read: it holds {constant}, which no results file does" in result.err
