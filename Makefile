# Two commands: `make demo` runs the reference example, `make test` runs the test suite.
# Both set up a local virtual environment (.venv) with gpuad and its test dependencies on first use.
# `make bench` sets up a second environment, .venv-bench, with gpuad and the peers of the benchmark suite (the
# `bench` extra: JAX, autograd, PyTorch, ...; PyTorch's CUDA wheels would replace the test extra's NVRTC, so they
# stay out of .venv) and runs benchmarks/suite.py (BENCH_ARGS passes options, e.g. BENCH_ARGS="--quick" or
# "--workloads W1,W7 --readme"); `make bench-old` runs the earlier single-purpose scripts.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

.PHONY: demo test bench bench-old
demo: $(STAMP)
	$(VENV)/bin/python -m gpuad

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python benchmarks/suite.py $(BENCH_ARGS)

bench-old: $(STAMP)
	$(VENV)/bin/python benchmarks/overhead.py
	$(VENV)/bin/python benchmarks/gradient_cost.py
	$(VENV)/bin/python benchmarks/checkpoint_bench.py
	$(VENV)/bin/mpiexec -n 1 $(VENV)/bin/python benchmarks/distributed_scaling.py
	$(VENV)/bin/mpiexec -n 2 $(VENV)/bin/python benchmarks/distributed_scaling.py
