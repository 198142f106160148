# Two commands: `make demo` runs the reference example, `make test` runs the test suite.
# Both set up a local virtual environment (.venv) with gpuad and its test dependencies on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

.PHONY: demo test bench
demo: $(STAMP)
	$(VENV)/bin/python -m gpuad

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/overhead.py
	$(VENV)/bin/python benchmarks/gradient_cost.py
	$(VENV)/bin/python benchmarks/checkpoint_bench.py
	$(VENV)/bin/mpiexec -n 1 $(VENV)/bin/python benchmarks/distributed_scaling.py
	$(VENV)/bin/mpiexec -n 2 $(VENV)/bin/python benchmarks/distributed_scaling.py
