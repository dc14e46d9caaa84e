# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

# Install CPU torch first when absent (an unpinned torch would pull a multi-GB CUDA build),
# then the package with its test extras. Reruns only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: venv
	$(VENV)/bin/dfalens demo -o demo-out

test: venv
	$(PY) -m ruff check dfalens tests benchmarks examples
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check dfalens tests benchmarks examples
	$(PY) -m ruff format --check dfalens tests benchmarks examples

clean:
	rm -rf $(VENV) demo-out .pytest_cache .hypothesis
