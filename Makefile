# make demo / make test / make lint / make bench — each creates .venv from pyproject.toml first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean

# llama-cpp-python (genai extra) compiles llama.cpp here, once per machine (pip keeps the wheel):
# ~8 CPU-minutes on 2 cores. Portable (AVX2): a native build uses AMX where the CPU has it, and
# crashed on the reference machine; without the multimodal library, which Cauce does not use.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cauce demo
	$(BIN)/cauce demo genai
	@echo "Look at it in a browser: $(BIN)/cauce ui --open"

# Two pytest workers (pytest-xdist): the suite waits on servers and subprocesses much of its time,
# so two share even a 2-core machine (30.8 -> 17.8 min there). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest --slow -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

bench: $(STAMP)
	$(BIN)/python benchmarks/tracking_vs_mlflow.py

clean:
	rm -rf $(VENV) .bench .pytest_cache .mypy_cache .ruff_cache
