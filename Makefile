# Quick start: `make demo` runs the main job, `make test` the test suite.
# Each target creates (or refreshes) the virtual environment in .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast bench clean notebooks

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,foundation]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/uqcalc demo

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# tutorials/NN_*.py (jupytext percent format) are the sources of the committed .ipynb;
# --update keeps the cell ids of an existing notebook, so a diff shows only changed cells
notebooks: $(STAMP)
	$(PY) -m jupytext --update --to notebook tutorials/[0-9][0-9]_*.py

clean:
	rm -rf $(VENV) .pytest_cache .uqcalc-cache
