# fluxwidget: two commands.
#   make demo   open notebooks/quickstart.ipynb in JupyterLab (on the emulator when FAL_KEY is unset)
#   make test   ruff, mypy and the whole pytest suite, browser tests included
# Both create .venv with $(PYTHON) if it is missing and install what they need once; the install
# is repeated only when pyproject.toml changes (stamp files inside .venv).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check --progress-bar off
PYTEST_ARGS ?= --durations=15
# pytest-xdist workers; the browser tests, the Binder build and the notebooks each stay on one.
PYTEST_WORKERS ?= 2
JUPYTER_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck pytest browser reload-stress notebooks screenshots bench bench-short clean

help:
	@echo "make demo   open the quickstart notebook in JupyterLab (emulator when FAL_KEY is unset)"
	@echo "make test   ruff check, ruff format --check, mypy and pytest (browser tests included)"
	@echo "make lint | typecheck | pytest | browser | notebooks   parts of make test"
	@echo "make bench  every benchmark, full settings (~15 min); make bench-short: smoke test"
	@echo "make screenshots   refresh docs/screenshot-*.png (README pictures) from a real JupyterLab"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e ".[demo]"
	@touch $@

# bench: fal-client, measured against in benchmarks/ (the short benchmark test runs it too)
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e ".[test,browser,bench]"
	@touch $@

# JupyterLab refuses to start as root (containers, many cloud notebooks) without --allow-root.
ALLOW_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

demo: $(VENV)/.installed-demo
	@if [ -z "$$FAL_KEY$$FAL_KEY_ID" ]; then \
		echo "No FAL_KEY set: the panel runs on the built-in emulator (placeholder images)."; fi
	@$(BIN)/python binder/enable_widget_state.py
	$(BIN)/python -m jupyter lab notebooks/quickstart.ipynb $(ALLOW_ROOT) $(JUPYTER_ARGS)

test: lint typecheck pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . notebooks/build_notebooks.py
	$(BIN)/ruff format --check . notebooks/build_notebooks.py
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The page-reload tab test (6 reloads in JupyterLab, 6 in Notebook 7) run RUNS times in a row:
# the tab bug it guards against (issue 17) was intermittent, so one clean run proves little.
RUNS ?= 10
reload-stress: $(VENV)/.installed-test
	@for run in $$(seq $(RUNS)); do echo "reload-stress run $$run of $(RUNS)"; \
		$(BIN)/python -m pytest -n 0 -q \
		"tests/browser/test_life_browser.py::test_tabs_switch_after_every_reload_with_the_kernel_running" \
		|| exit 1; done

browser: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

screenshots: $(VENV)/.installed-test
	FLUXWIDGET_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -m browser \
		"tests/browser/test_panel_browser.py::test_quickstart_generates_in_browser[lab]" \
		tests/browser/test_sweeps_browser.py
	cp artifacts/browser/lab-sweeps-notebook-grid.png docs/screenshot-sweep.png

notebooks: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/test_notebooks.py tests/test_binder.py $(PYTEST_ARGS)

BENCHMARKS := bench_network bench_sweep bench_waiting bench_status_updates bench_concurrency \
	bench_overhead bench_thumbnails bench_upload

bench: $(VENV)/.installed-test
	@for name in $(BENCHMARKS); do \
		echo "== benchmarks/$$name.py"; $(BIN)/python benchmarks/$$name.py || exit 1; echo; done

bench-short: $(VENV)/.installed-test
	@for name in $(BENCHMARKS); do \
		echo "== BENCH_SHORT=1 benchmarks/$$name.py"; \
		BENCH_SHORT=1 $(BIN)/python benchmarks/$$name.py || exit 1; echo; done

clean:
	rm -rf artifacts .pytest_cache .mypy_cache .ruff_cache
