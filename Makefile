# Quick start: `make demo` runs the main job, `make test` the test suite.
# Each target creates (or refreshes) the virtual environment in .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# MACE's pins (e3nn 0.4.4) conflict with SevenNet's: its tests run in an environment of their own
MACE_VENV  ?= .venv-mace
MACE_PY    := $(MACE_VENV)/bin/python
MACE_STAMP := $(MACE_VENV)/.installed

# GPAW's build needs these Debian packages (the 'dft' extra; its tests skip without it)
DFT_DEBS := libxc-dev libopenblas-dev libscalapack-openmpi-dev libfftw3-dev libopenmpi-dev
DFT_STAMP := $(VENV)/.installed-dft

.PHONY: venv demo test test-fast bench clean notebooks dft

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,foundation]'
	touch $(STAMP)

$(MACE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MACE_VENV)
	$(MACE_PY) -m pip install --quiet --upgrade pip
	$(MACE_PY) -m pip install --quiet -e '.[mace]' 'pytest>=7'
	touch $(MACE_STAMP)

venv: $(STAMP)

# optional: GPAW for the direct DFT references (a ~4 min build); root and apt-get for the
# Debian packages, else they must already be there
$(DFT_STAMP): $(STAMP)
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -q $(DFT_DEBS) >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $(DFT_DEBS) >/dev/null; }; fi
	$(PY) -m pip install --quiet -e '.[test,foundation,dft]'
	touch $(DFT_STAMP)

dft: $(DFT_STAMP)

demo: $(STAMP)
	$(VENV)/bin/uqcalc demo

test: $(STAMP) $(MACE_STAMP)
	$(PY) -m pytest -q
	$(MACE_PY) -m pytest -q -p no:cacheprovider tests/test_last_layer_mace.py

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# tutorials/NN_*.py (jupytext percent format) are the sources of the committed .ipynb;
# --update keeps the cell ids of an existing notebook, so a diff shows only changed cells
notebooks: $(STAMP)
	$(PY) -m jupytext --update --to notebook tutorials/[0-9][0-9]_*.py

clean:
	rm -rf $(VENV) $(MACE_VENV) .pytest_cache .uqcalc-cache
