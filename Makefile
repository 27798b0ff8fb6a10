# `make run` and `make test` create .venv when missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint clean browser

setup: $(STAMP)

# torch goes in first and pinned: it is then the local CPU wheel, where a looser resolve pulls CUDA builds.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --progress-bar off torch==2.13.0
	$(BIN)/python -m pip install --quiet --progress-bar off -e ".[all,test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python compare.py --task linreg

# A second environment with NumPy 2 and this package (no framework), for the workers' cross-environment
# tests: the numpy backend there against the numpy backend here. Built once, kept under build/.
NP2 := build/np2
NP2_STAMP := $(NP2)/.installed
$(NP2_STAMP): pyproject.toml
	test -x $(NP2)/bin/python || $(PYTHON) -m venv $(NP2)
	$(NP2)/bin/python -m pip install --quiet --progress-bar off "numpy>=2,<3"
	$(NP2)/bin/python -m pip install --quiet --progress-bar off --no-deps -e .
	touch $(NP2_STAMP)

# Headless Chromium for the report.html tests: Debian's chromium and chromedriver, installed with apt-get
# where this runs as root (no tool downloads a browser of its own); elsewhere, install them yourself.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "install Debian's chromium and chromium-driver (as root: apt-get install chromium chromium-driver)"; fi; \
	fi

# `--backends all` names every registered backend, so a framework that fails to install fails the tests
# instead of skipping them; BROWSER_REQUIRED does the same for a missing Chromium. `-n 2`: two test processes
# (pytest-xdist), as most tests wait on a framework's import or a child process on one core.
test: lint $(NP2_STAMP) browser
	NP2_PYTHON=$(CURDIR)/$(NP2)/bin/python BROWSER_REQUIRED=1 $(BIN)/python -m pytest -n 2 --backends all --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy --config-file pyproject.toml -p backend_compare

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis build
