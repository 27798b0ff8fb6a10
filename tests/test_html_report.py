"""report.html opened in a real headless Chromium (Debian's chromium and chromedriver, driven by Selenium),
with every host unresolvable: it renders with no console error, each expected plot has its traces, the
tables sort, and a screenshot is not blank."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend_compare.comparison.html import run_page
from backend_compare.comparison.report import header_lines, render
from tests.conftest import RunCli, load_backend

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        message = "Debian's chromium and chromium-driver are not installed (make test installs them)"
        if os.environ.get("BROWSER_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: the page must not need it
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "--window-size=1280,1600"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def opened(browser: Any, page: Path) -> dict[str, int]:
    """Open the page; the console's errors fail the test; each plot's id and its number of traces."""
    browser.get_log("browser")  # what earlier pages logged
    browser.get(page.resolve().as_uri())
    browser.execute_script("return document.readyState")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    return dict(browser.execute_script(
        "var found={};document.querySelectorAll('.js-plotly-plot').forEach(function(p){found[p.id]=p.data.length;});"
        "return found;"))


def assert_not_blank(browser: Any, where: Path) -> None:
    from matplotlib.image import imread

    png = browser.get_screenshot_as_png()
    where.write_bytes(png)
    pixels = imread(io.BytesIO(png))[..., :3]
    assert pixels.shape[0] > 500 and pixels.std() > 0.05  # drawn: text, lines and colour, not one flat colour
    assert (pixels.reshape(-1, 3) != 1.0).any(axis=1).mean() > 0.05


def test_a_runs_report_renders_its_plots_in_chromium(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    ran = cli("--task", "mlp", "--backends", "numpy,torch", "--epochs", "20", "--seeds", "2",
              "--out", str(tmp_path / "run1"))
    assert ran.code == 0, ran.err
    page = tmp_path / "run1" / "report.html"
    text = page.read_text()
    outside_scripts = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    assert re.search(r"<(script|link|img)[^>]*(src|href)=", text) is None  # every script inlined, nothing fetched
    assert "http" not in outside_scripts
    plots = opened(browser, page)
    # loss: per backend a ±std band (two seeds), the training batches and the validation curve; wall time the same
    # without validation; parity: one pair
    assert plots == {"plot-loss": 6, "plot-time": 4, "plot-parity": 1}, plots
    assert browser.execute_script("return document.getElementById('plot-parity').layout.shapes.length") == 1
    names = browser.execute_script("return document.getElementById('plot-loss').data.map(function(t){return t.name;})")
    assert "numpy validation" in names and "torch validation" in names
    assert "Provenance" in browser.page_source and "--task mlp --backends numpy,torch" in browser.page_source
    assert_tables_fit(browser)  # a two-seed summary was 2.3 times the page's width
    assert_not_blank(browser, tmp_path / "run.png")


def assert_tables_fit(browser: Any) -> None:
    """No table is wider than the page's column, and the page is no wider than the window."""
    widths = browser.execute_script(
        "var column=document.body.getBoundingClientRect().right;return [window.innerWidth,"
        "document.documentElement.scrollWidth].concat(Array.from(document.querySelectorAll('table')).map("
        "function(t){return [t.id||t.className, t.getBoundingClientRect().right-column];}));")
    window, page, tables = widths[0], widths[1], widths[2:]
    assert page <= window and all(beyond <= 0 for _, beyond in tables), (window, page, tables)


def test_a_classifications_report_has_its_confusion_matrices(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    ran = cli("--task", "softmax", "--dataset", "iris", "--backends", "numpy,torch", "--epochs", "20",
              "--out", str(tmp_path / "run1"))
    assert ran.code == 0, ran.err
    plots = opened(browser, tmp_path / "run1" / "report.html")
    assert plots["plot-confusion"] == 3, plots  # a heatmap each: numpy, torch and the optimum
    titles = browser.execute_script(
        "return document.getElementById('plot-confusion').layout.annotations.map(function(a){return a.text;})")
    assert titles == ["numpy", "torch", "L2 cross-entropy optimum"]
    layout = "document.getElementById('plot-confusion').layout"
    ranges = browser.execute_script(f"return [{layout}.yaxis.range, {layout}.yaxis2.range, {layout}.yaxis3.range]")
    assert all(top > bottom for top, bottom in ranges), ranges  # every panel reversed: the first true class on top
    counts = browser.execute_script("return document.getElementById('plot-confusion').data[0].texttemplate")
    assert counts == "%{text}"  # counts as integers, not 10.0
    assert "Accuracy per class" in browser.page_source and "versicolor" in browser.page_source
    assert (tmp_path / "run1" / "confusion.csv").read_text().startswith("backend,split,true,predicted,count")
    assert_not_blank(browser, tmp_path / "classification.png")


def test_tables_sort_on_a_click(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    ran = cli("--task", "linreg", "--backends", "numpy", "--seeds", "3", "--out", str(tmp_path / "run"))
    assert ran.code == 0, ran.err
    opened(browser, tmp_path / "run" / "report.html")
    from selenium.webdriver.common.by import By

    def column(index: int) -> list[str]:
        return [row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-value")
                for row in browser.find_elements(By.CSS_SELECTOR, "#table-params tbody tr")]

    header = browser.find_elements(By.CSS_SELECTOR, "#table-params thead th")
    error = [cell.text for cell in header].index("abs_error")
    header[error].click()
    ascending = [float(value) for value in column(error)]
    assert ascending == sorted(ascending)
    header[error].click()
    assert [float(value) for value in column(error)] == sorted(ascending, reverse=True)


def test_a_diverged_run_is_marked_where_it_diverged(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    ran = cli("--task", "linreg", "--backends", "numpy", "--lr", "3", "--out", str(tmp_path / "run"))
    assert ran.code == 1
    opened(browser, tmp_path / "run" / "report.html")
    annotations = browser.execute_script(
        "return document.getElementById('plot-loss').layout.annotations.map(function(a){return a.text;})")
    assert any(text.startswith("numpy diverged at step ") for text in annotations), annotations
    assert "diverged at epoch 1" in browser.find_element("css selector", ".note").text


def test_a_sweeps_report_has_its_panels(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    load_backend("torch")
    out = tmp_path / "sweep"
    ran = cli("sweep", "--task", "linreg", "--lr", "0.01,0.03", "--seeds", "2", "--epochs", "1", "--backends",
              "numpy,torch", "--executor", "inline", "--out", str(out))
    assert ran.code == 0, ran.err
    plots = opened(browser, out / "report.html")
    assert plots == {"plot-sweep-loss": 4, "plot-sweep-parity": 1, "plot-sweep-time": 2, "plot-sweep-steps": 2,
                     "plot-sweep-wall": 2}, plots
    assert_tables_fit(browser)  # its summary, every statistic of every metric, was six times the page's width
    heatmap = browser.execute_script("var t=document.getElementById('plot-sweep-parity').data[0];"
                                     "return [t.zmid, t.colorbar.ticktext, t.text];")
    assert heatmap[0] == 0 and "1× (tolerance)" in heatmap[1]  # colour by multiples of the tolerance, 1× the middle
    assert all(text == "0" or text.endswith("×") for row in heatmap[2] for text in row), heatmap[2]
    assert_not_blank(browser, tmp_path / "sweep.png")
    (out / "report.html").unlink()
    again = cli("report", str(out))  # from the saved tables and cache
    assert again.code == 0 and "report.html" in again.out
    assert opened(browser, out / "report.html") == plots


def test_an_explain_bundle_has_a_report(browser: Any, cli: RunCli, tmp_path: Path) -> None:
    ran = cli("explain", "--backends", "numpy,mxnet", "--dtype", "float64", "--optimizer", "adam", "--lr", "0.01",
              "--out", str(tmp_path / "why"))
    load_backend("mxnet")
    assert ran.code == 1, ran.err
    opened(browser, tmp_path / "why" / "report.html")
    assert "differ" in browser.find_element("css selector", "#table-findings").text


def test_report_rewrites_a_saved_runs_page_and_refuses_other_folders(cli: RunCli, tmp_path: Path) -> None:
    ran = cli("--backends", "numpy", "--out", str(tmp_path / "run"))
    assert ran.code == 0
    page = tmp_path / "run" / "report.html"
    before = page.read_text()
    page.unlink()
    again = cli("report", str(tmp_path / "run"))
    assert again.code == 0 and page.read_text().split("Provenance")[1][:300] == before.split("Provenance")[1][:300]
    (tmp_path / "mine").mkdir()
    refused = cli("report", str(tmp_path / "mine"))
    assert refused.code == 2 and refused.err.count("\n") == 1 and not (tmp_path / "mine" / "report.html").exists()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["provenance"]["command"] == f"compare.py --executor inline --backends numpy --out {tmp_path / 'run'}"
    if shutil.which("git"):  # run from this checkout: its commit, and whether the tree differs from it
        assert re.fullmatch(r"[0-9a-f]{40}( \+ changes)?", results["provenance"]["commit"])


def test_a_page_that_cannot_be_made_leaves_the_rest_of_the_run_saved(monkeypatch: pytest.MonkeyPatch, cli: RunCli,
                                                                      tmp_path: Path) -> None:
    from backend_compare.cli import report as report_command
    from backend_compare.cli import run as run_command

    def broken(*_: object) -> str:
        raise ImportError("plotly is broken")

    monkeypatch.setattr(run_command, "run_page", broken)
    monkeypatch.setattr(report_command, "run_page", broken)
    ran = cli("--backends", "numpy", "--out", str(tmp_path / "run"), "--quiet")
    assert ran.code == 1 and "report.html could not be made: ImportError: plotly is broken" in ran.err
    assert ran.err.count("\n") == 1 and "Traceback" not in ran.err
    saved = sorted(path.name for path in (tmp_path / "run").iterdir())
    assert "results.json" in saved and "report.html" not in saved
    again = cli("report", str(tmp_path / "run"))
    assert again.code == 1 and "could not be made" in again.err and not (tmp_path / "run" / "report.html").exists()


def test_a_reports_numbers_show_their_differing_digits_and_its_settings_say_what_they_mean(
        cli: RunCli, tmp_path: Path) -> None:
    ran = cli("--task", "linreg", "--backends", "numpy", "--seeds", "3", "--out", str(tmp_path / "run"))
    assert ran.code == 0, ran.err
    report = json.loads((tmp_path / "run" / "results.json").read_text())
    # a second backend whose parameters differ from numpy's in the 8th digit, as float32 frameworks' do
    twin = [{**row, "backend": "twin", "learned": row["learned"] * (1 + 3e-8)} for row in report["params"]
            if row["backend"] == "numpy"]
    report["params"] += twin
    learned = [row["learned"] for row in report["params"]]
    page = run_page(report)
    params = page.split("id='table-params'")[1].split("</table>")[0]
    cells = re.findall(r"<td data-value='([^']*)' title='([^']*)'>([^<]*)", params)
    shown = {float(value): (title, text) for value, title, text in cells if float(value) in learned}
    assert len({text for _, text in shown.values()}) == len(set(learned)) == 9  # 4 significant digits showed 6
    assert all(title.split(" ± ")[0] == repr(value) for value, (title, _) in shown.items())  # the full value
    text_table = render(report, "table").split("Parameters")[1].split("\n\n")[0]
    assert all(text in text_table for _, text in shown.values())  # the text tables write them the same way
    settings = page.split("id='table-settings'")[0] if "table-settings" in page else page.split("Provenance")[0]
    assert "<td>seeds</td><td>0, 1, 2</td>" in settings and "<td>seed</td>" not in settings
    report["options"].update(parallel=2, threads=1)
    settings = run_page(report).split("Provenance")[0]
    assert "<td>parallel</td>" not in settings and (
        "<td>workers</td><td>2 workers trained at once, sharing the cores, 1 thread each: --jobs 1 times each "
        "backend alone</td>") in settings
    assert header_lines(report)[0].startswith("task linreg · seeds 0,1,2 · ")
