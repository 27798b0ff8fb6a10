"""Saved runs: a folder with results.json, each table as CSV, a Markdown report and the plot.

A run folder appears whole or not at all: it is written as a hidden sibling folder and renamed into
place. A folder that holds anything but a previous run of this tool is never written into.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends.precision import finfo, numerics_of
from .report import KEYS, WRITTEN_NOT_SHOWN, render, shown_tables

RESULTS = "results.json"
SCHEMA = "results.schema.json"  # beside this file: the format of RESULTS, for show, diff and anyone's tools
PLOT = "loss_curves.png"
HTML = "report.html"  # the page people share: self-contained, interactive
OWNER = ".backend-compare.json"  # in every folder written whole: what wrote it and every file it wrote
SIGNATURE = "backend-compare folder"
BY_SEED = "{}_by_seed.csv"  # a multi-seed run's table with every seed's rows
RUN_FILES = {RESULTS, "report.md", PLOT, HTML, OWNER,  # all a run folder may hold
             *(name for key in KEYS for name in (f"{key}.csv", BY_SEED.format(key)))}
MAX_RESULTS_BYTES = 256 * 2**20
# Metrics where a rise is a regression; timing is reported but never gates.
GATED = ("final_train_loss", "final_train_objective", "final_val_loss", "max_abs_param_error", "function_error",
         "max_abs_param_diff", "max_abs_step_loss_diff")
INFORMATIONAL = ("seconds", "compile_seconds", "us_per_step")
ROUNDING_ULPS = 16  # a change of at most this many ulp of the values compared is rounding: "equal"
NOISE_SE = 2.0  # with several seeds, a change within this many standard errors is "within noise"
NOT_COMPARED = ("curves", "relative")  # options that change what is printed, not what is computed


class OutputError(ValueError):
    """An output that cannot be written: one line for the user."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _user_mode(path: Path, folder: bool = False) -> None:
    """tempfile makes private files (0600/0700); a result is the user's, readable as their umask says."""
    path.chmod((0o777 if folder else 0o666) & ~_umask())


def is_run_folder(path: Path) -> bool:
    """A folder written by this tool: a results.json of ours, and nothing that is not a run file; with its
    owner file (runs since 0.3), exactly the files it lists."""
    try:
        names = {entry.name for entry in path.iterdir()}
        if RESULTS not in names or not names <= RUN_FILES or (OWNER in names and not owned(path, "run")):
            return False
        report = _read_results(path / RESULTS)
    except (OSError, ValueError):
        return False
    return "summary" in report


def existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def prove_writable(folder: Path, option: str, given: str) -> None:
    try:
        Path(tempfile.mkdtemp(dir=folder, prefix=".backend-compare-check-")).rmdir()
    except OSError as err:
        raise OutputError(f"{option} {given!r} cannot be written: {err.strerror or err}") from None


def check_folder_of(given: str, kind: str, what: str) -> Path:
    """--out for a folder of `kind` (an owner file's kind, written by write_folder_whole): a new folder, an empty one,
    or a previous one of that kind (replaced whole at the end); a ValueError otherwise, before anything runs."""
    out = Path(given)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ValueError(f"--out {given!r} exists and is not a folder; give a new folder or a previous {what}'s")
        entries = sorted(entry.name for entry in out.iterdir())
        if entries and not owned(out, kind):
            raise ValueError(f"--out {given!r} holds files that are not {'an' if what[0] in 'aeiou' else 'a'} {what} "
                             f"({', '.join(entries[:3])}{', …' if len(entries) > 3 else ''}); give a new folder, an "
                             f"empty one or a previous {what}'s")
    prove_writable(existing_ancestor(out.parent), "--out", given)
    return out


def check_out(given: str) -> Path:
    """Where a run may be saved, checked before training: a new folder, an empty one, or a previous run
    (replaced whole at the end). Nothing is created yet."""
    out = Path(given)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutputError(f"--out {given!r} exists and is not a folder; give a new folder or a previous run's")
        entries = sorted(entry.name for entry in out.iterdir())
        if entries and not is_run_folder(out):
            shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
            raise OutputError(f"--out {given!r} holds files that are not a backend-compare run ({shown}); "
                              "give a new folder, an empty one or a previous run's")
    prove_writable(existing_ancestor(out.parent), "--out", given)
    return out


def check_writable_file(option: str, path: str) -> None:
    """The file's folder exists and takes a new file (checked before training, so nothing is lost); a file
    already there is replaced only when the suite wrote it (a plot carries PLOT_SIGNATURE)."""
    if Path(path).is_dir() or path.endswith(os.sep):
        raise OutputError(f"{option} {path!r} is a folder; give a file name")
    if (Path(path).exists() or Path(path).is_symlink()) and not is_our_plot(Path(path)):
        raise OutputError(f"{option} {path!r} exists and was not written by backend-compare; give a new name "
                          "(a plot of ours is replaced)")
    folder = Path(path).absolute().parent
    if not folder.is_dir():
        raise OutputError(f"{option} {path!r} cannot be written: its folder does not exist")
    prove_writable(folder, option, path)


def check_apart(inputs: dict[str, str], plot: str | None, out: str | None) -> None:
    """No output may replace an input of the same run: --plot is not an input file, and --out (a folder
    replaced whole at the end) holds neither an input nor the --plot file."""
    def real(path: str) -> Path:
        return Path(os.path.realpath(path))

    folder = real(out) if out is not None else None
    for option, path in {**inputs, **({"--plot": plot} if plot is not None else {})}.items():
        if option != "--plot" and plot is not None and real(path) == real(plot):
            raise OutputError(f"--plot {plot!r} is the run's {option} file; give the plot another name")
        if folder is not None and (real(path) == folder or folder in real(path).parents):
            raise OutputError(f"--out {out!r} would replace {option} {path!r}, which lies inside it; "
                              "give another folder")


def write_atomic(path: Path, data: bytes) -> None:
    """Write under a temporary name in the same folder, then rename: a reader never sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        _user_mode(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


PLOT_FORMATS = ("png", "svg", "pdf")  # --plot writes the format its file name ends with


def plot_format(path: str) -> str:
    """The format named by --plot's extension; any other ending is a usage error, not PNG bytes in disguise."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        raise OutputError(f"--plot {path!r} must end in {', '.join('.' + f for f in PLOT_FORMATS)}; "
                          f"received {'no extension' if not suffix else '.' + suffix}")
    return suffix


PLOT_SIGNATURE = "backend-compare plot"  # in every figure's metadata: what proves a file is ours to replace
MAX_PLOT_BYTES = 64 * 2**20


def figure_bytes(figure: Any, fmt: str = "png") -> bytes:
    import io

    buffer = io.BytesIO()
    key = "Software" if fmt == "png" else "Creator"  # what each format's metadata has room for
    figure.savefig(buffer, format=fmt, dpi=110, metadata={key: PLOT_SIGNATURE})
    return buffer.getvalue()


def is_our_plot(path: Path) -> bool:
    """A regular file whose metadata names this suite: a figure it wrote (PNG text, PDF and SVG creator)."""
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PLOT_BYTES:
            return False
        return PLOT_SIGNATURE.encode() in path.read_bytes()
    except OSError:
        return False


def raise_stop_within(err: BaseException) -> None:
    """Raise the Ctrl-C or SIGTERM that `err` wraps, if any: a signal that lands while Python builds a class
    (an import, say) comes out as the RuntimeError of `__set_name__`, its cause the KeyboardInterrupt. Such
    a run was stopped, not broken."""
    seen: set[int] = set()
    found: BaseException | None = err
    while found is not None and id(found) not in seen:
        if not isinstance(found, Exception):  # KeyboardInterrupt, the program's Terminated
            raise found
        seen.add(id(found))
        found = found.__cause__ or found.__context__


def html_page(make: Callable[[], str]) -> str:
    """report.html's text; plotly failing in any way (a broken install) is OutputError, one line."""
    from ..backends import error_line

    try:
        return make()
    except Exception as err:
        raise_stop_within(err)
        raise OutputError(f"report.html could not be made: {error_line(err)}") from err


def save_run(out: Path, report: dict[str, Any], plot_png: bytes | None, page: str | None) -> None:
    """The run folder: tables, report, plot, report.html and results.json, written whole (see
    write_folder_whole); without the plot or the page when they could not be made."""
    def fill(staging: Path) -> None:
        unprinted = [key for key in (*WRITTEN_NOT_SHOWN, *report.get("on_request", ())) if report.get(key)]
        for key in dict.fromkeys(["summary", *shown_tables(report), *unprinted]):
            (staging / f"{key}.csv").write_bytes(pd.DataFrame(report[key]).to_csv(index=False).encode())
        for key, rows in report.get("by_seed", {}).items():
            (staging / BY_SEED.format(key)).write_bytes(pd.DataFrame(rows).to_csv(index=False).encode())
        (staging / "report.md").write_bytes(render(report, "markdown").encode())
        if page is not None:
            (staging / HTML).write_bytes(page.encode())
        if plot_png is not None:
            (staging / PLOT).write_bytes(plot_png)
        (staging / RESULTS).write_bytes(render(report, "json").encode())

    write_folder_whole(out, fill, is_run_folder, "a backend-compare run", "run")


def _contents(folder: Path) -> list[str]:
    """Every file and folder below `folder`, as paths relative to it (links not followed), sorted."""
    found = []
    for root, folders, files in os.walk(folder):
        found += [str(Path(root, name).relative_to(folder)) for name in folders + files]
    return sorted(name for name in found if name != OWNER)


def owned(folder: Path, kind: str) -> bool:
    """Whether this suite provably wrote `folder` as a `kind` and nothing has been added to it since: its
    owner file says so and lists exactly what the folder holds."""
    marker = folder / OWNER
    try:
        if not stat.S_ISREG(marker.lstat().st_mode) or marker.stat().st_size > MAX_RESULTS_BYTES:
            return False
        written = json.loads(marker.read_bytes().decode())
    except (OSError, ValueError):
        return False
    return (isinstance(written, dict) and written.get("signature") == SIGNATURE and written.get("kind") == kind
            and written.get("files") == _contents(folder))


def write_folder_whole(out: Path, fill: Callable[[Path], None], ours: Callable[[Path], bool], what: str,
                       kind: str | None = None) -> None:
    """`fill` a hidden sibling folder, then rename it into place; a previous folder of ours there (`ours`
    says which) is replaced whole, no file of it staying behind. On any failure or interruption nothing
    changes. With `kind`, the folder gets its owner file (see owned), listing every file written."""
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".tmp"))
    previous: Path | None = None
    try:
        fill(staging)
        if kind is not None:
            (staging / OWNER).write_text(json.dumps({"signature": SIGNATURE, "kind": kind,
                                                     "files": _contents(staging)}, indent=1) + "\n")
        _user_mode(staging, folder=True)
        if out.exists():
            if any(out.iterdir()) and not ours(out):  # it changed since it was checked
                raise OutputError(f"--out {str(out)!r} now holds files that are not {what}")
            previous = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, previous)  # an empty folder is replaced by a rename over it
        os.replace(staging, out)
    except BaseException:
        if previous is not None and not out.exists():
            os.replace(previous, out)
            previous = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            remove_tree(previous)


def remove_tree(path: Path) -> None:
    """Delete a folder of ours whole, folders without permissions inside it included (given them first):
    nothing of it stays behind, hidden or not."""
    folders = [path]
    while folders:
        folder = folders.pop()
        with contextlib.suppress(OSError):
            folder.chmod(folder.lstat().st_mode | stat.S_IRWXU)
            folders += [entry for entry in folder.iterdir() if entry.is_dir() and not entry.is_symlink()]
    shutil.rmtree(path, ignore_errors=True)


def _no_constant(name: str) -> None:
    """Results are written with allow_nan=False (a missing number is null): Infinity or NaN was put there by hand."""
    raise ValueError(f"it holds {name}, which no results file does (a missing number is null)")


def _read_results(path: Path) -> dict[str, Any]:
    info = path.stat()  # a FIFO or a device must not be opened: reading it could block or never end
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{str(path)!r} is not a regular file")
    if info.st_size > MAX_RESULTS_BYTES:
        raise ValueError(f"{str(path)!r} is {info.st_size} bytes, more than a results file can be")
    try:
        report = json.loads(path.read_bytes().decode(), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{str(path)!r} cannot be read: {str(err).splitlines()[0][:200]}") from None
    if not isinstance(report, dict):
        raise ValueError(f"{str(path)!r} is not a backend-compare results file")
    return report


def load_run(path: str) -> dict[str, Any]:
    results = Path(path) / RESULTS
    try:
        report = _read_results(results)
    except FileNotFoundError:
        raise ValueError(f"{path!r} is not a saved run: it has no {RESULTS}") from None
    except OSError as err:
        raise ValueError(f"{str(results)!r} cannot be read: {err.strerror or err}") from None
    problem = _schema_problem(report)
    if problem:
        raise ValueError(f"{str(results)!r} is not a backend-compare results file: {problem}")
    return report


@functools.cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads((Path(__file__).parent / SCHEMA).read_text())
    return jsonschema.Draft202012Validator(schema)


def _schema_problem(report: Any) -> str | None:
    """What keeps `report` from being a run this tool can show and diff, in one line (None when nothing),
    checked against results.schema.json: the one description of the format."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(report))
    if error is None:
        return None
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"{where.lstrip('.') or 'the top level'}: {error.message[:200]}"


def differing_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The settings two runs do not share ("options.lr: 0.03 vs 0.01"); empty when they compare like with like."""
    def flat(report: dict[str, Any]) -> dict[str, Any]:
        options = {key: value for key, value in report["options"].items() if key not in NOT_COMPARED}
        return {"task": report["task"], **{f"settings.{k}": v for k, v in report["settings"].items()},
                **{f"options.{k}": v for k, v in options.items()}, "seeds": report["seeds"],
                "backends": sorted(str(row.get("backend")) for row in report["summary"])}
    a, b = flat(old), flat(new)

    def shown(value: Any) -> str:  # an edited file's text may hold line breaks: the message stays one line
        return repr(value) if isinstance(value, str) and not value.isprintable() else str(value)

    return [f"{key}: {shown(a.get(key, '(none)'))} vs {shown(b.get(key, '(none)'))}"
            for key in dict.fromkeys([*a, *b]) if a.get(key) != b.get(key)]


def _metrics(report: dict[str, Any]) -> dict[tuple[str, str], tuple[float, float | None, float]]:
    """(subject, metric) -> (value, standard deviation over seeds or None, scale of the values compared)."""
    values: dict[tuple[str, str], tuple[float, float | None, float]] = {}
    rows = {row["backend"]: row for row in report["summary"]}

    def scale(names: list[str], key: str) -> float:
        return max((float(rows[name].get(key) or 0.0) for name in names if name in rows), default=0.0)

    def add(subject: str, metric: str, row: dict[str, Any], names: list[str]) -> None:
        if row.get(metric) is None:
            return
        value, std = float(row[metric]), row.get(f"{metric}_std")
        size = (scale(names, "param_scale") if "param" in metric else
                scale(names, "step_loss_scale") if "step_loss" in metric else abs(value))
        values[(subject, metric)] = (value, None if std is None else float(std), size)

    for name, row in rows.items():
        for metric in GATED + INFORMATIONAL:
            add(name, metric, row, [name])
    for row in report.get("parity", []):
        pair = [row["backend_a"], row["backend_b"]]
        for metric in ("max_abs_param_diff", "max_abs_step_loss_diff"):
            add(f"{pair[0]} vs {pair[1]}", metric, row, pair)
    return values


def diff_runs(old: dict[str, Any], new: dict[str, Any], threshold: float, atol: float) -> pd.DataFrame:
    """Per backend (or pair) and metric: old, new, relative change and a verdict.

    - equal: the change is within ROUNDING_ULPS ulp of the values compared, in the run's dtype;
    - within noise: both runs have several seeds and the change is within NOISE_SE standard errors;
    - WORSE: a gated metric rose above old·(1 + threshold) + atol, or a backend that finished in A
      failed, diverged or is missing in B; better / same otherwise; timing is never gated.
    """
    eps = max(float(finfo(numerics_of(report["options"]["dtype"], report["options"].get("precision")).compute).eps)
              for report in (old, new))  # the coarser arithmetic
    n_old, n_new = len(old["seeds"]), len(new["seeds"])
    before, after = _metrics(old), _metrics(new)
    rows = _status_rows(old, new)
    for subject, metric in list(before) + [key for key in after if key not in before]:
        a, b = before.get((subject, metric)), after.get((subject, metric))
        if a is None or b is None:
            rows.append({"backend": subject, "metric": metric, "A": None if a is None else a[0],
                         "B": None if b is None else b[0], "change": math.nan,
                         "verdict": "only in A" if b is None else "only in B"})
            continue
        (va, sa, scale_a), (vb, sb, scale_b) = a, b
        change = (vb - va) / abs(va) if va else (0.0 if vb == va else math.inf)
        if metric in INFORMATIONAL:
            verdict = "timing"
        elif abs(vb - va) <= ROUNDING_ULPS * eps * max(scale_a, scale_b, abs(va), abs(vb)):
            verdict = "equal"
        elif sa is not None and sb is not None and n_old > 1 and n_new > 1 and \
                abs(vb - va) <= NOISE_SE * math.sqrt(sa**2 / n_old + sb**2 / n_new):
            verdict = "within noise"
        elif vb > va * (1 + threshold) + atol:
            verdict = "WORSE"
        elif vb < va * (1 - threshold) - atol:
            verdict = "better"
        else:
            verdict = "same"
        rows.append({"backend": subject, "metric": metric, "A": va, "B": vb, "change": change, "verdict": verdict})
    return pd.DataFrame(rows, columns=["backend", "metric", "A", "B", "change", "verdict"])


def _status_rows(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """A backend that finished in A and did not in B (failed, diverged, missing) is a regression."""
    status_b = {row["backend"]: row["status"] for row in new["summary"]}
    rows = []
    for row in old["summary"]:
        was, now = row["status"], status_b.get(row["backend"], "missing")
        if was == "ok" and now != "ok":
            rows.append({"backend": row["backend"], "metric": f"status: {now}", "A": None, "B": None,
                         "change": math.nan, "verdict": "WORSE"})
    return rows
