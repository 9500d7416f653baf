# Quick start: `make demo` (install + a short training run) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-jax-next test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ctde demo --out runs/demo

# Two test processes (pytest-xdist): the suite is mostly compilation, one core each.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# The same suite on the newest JAX the dependency range allows (0.11, which needs Python
# 3.12), in its own environment.
NEXT_PYTHON ?= python3.12
test-jax-next:
	@$(NEXT_PYTHON) --version >/dev/null 2>&1 || { echo "test-jax-next needs Python 3.12: set NEXT_PYTHON=/path/to/python3.12"; exit 2; }
	test -x .venv-next/bin/python || $(NEXT_PYTHON) -m venv .venv-next
	.venv-next/bin/python -m pip install --quiet -e ".[test]" "jax>=0.11,<0.12" "jaxlib>=0.11,<0.12"
	.venv-next/bin/python -m pytest -q -n 2

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/mappo_throughput.py

clean:
	rm -rf $(VENV) .venv-next runs .pytest_cache
