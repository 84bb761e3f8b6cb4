# Two commands on a fresh machine with Python 3.11+, pip and make: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_DEV := $(VENV)/.installed-dev
STAMP := $(VENV)/.installed
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: test demo lint typecheck unit bench bench-quick bench-core clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

lint: $(STAMP_DEV)
	$(BIN)/ruff check rudp tests bench tools examples
	$(BIN)/ruff format --check rudp tests bench tools examples

typecheck: $(STAMP_DEV)
	$(BIN)/mypy --strict rudp

unit: $(STAMP_DEV)
	$(BIN)/python -m pytest

test: lint typecheck unit

# DEMO_ARGS passes options through (the test of this target uses a small --size).
demo: $(STAMP)
	$(BIN)/rudp demo $(DEMO_ARGS)

$(STAMP_BENCH): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@ $(STAMP)

# Every scenario against kernel TCP, aioquic and KCP (needs root for the namespaces; long:
# see bench/README.md), then docs/benchmarks.md and its plots from bench/results/*.json.
bench: $(STAMP_BENCH)
	$(BIN)/python -m bench.suite
	$(BIN)/python -m bench.report

# A two-minute subset; its results and report stay in bench/results/quick/.
bench-quick: $(STAMP_BENCH)
	$(BIN)/python -m bench.suite --quick
	$(BIN)/python -m bench.report --results bench/results/quick \
		--doc bench/results/quick/benchmarks.md --img bench/results/quick/img --readme ''

# The sans-I/O core's own cost and simulated goodput (no sockets).
bench-core: $(STAMP)
	$(BIN)/python bench/core_cost.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
