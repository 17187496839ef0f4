# shardscope: the two set-up commands are `make demo` and `make test`.
# Both create .venv when missing and install the project into it (the first install builds
# llama-cpp-python from source: about 5 minutes on 2 cores; pip caches the wheel).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := local,models,embeddings,dev,interop,ray,inspect
# llama.cpp is compiled here. A native build enables the CPU's AMX kernels, which crash on
# these VMs (SIGSEGV in ggml_backend_amx_mul_mat); build portable AVX2 code instead.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: demo test lint bench install clean-venv help

help:
	@echo "make demo   - install, run the demo matrix on the embedded local models, print where to look"
	@echo "make test   - install, run the lint and type gates and the whole test suite"
	@echo "make lint   - ruff, import-linter (floors, no cycles), mypy"
	@echo "make bench  - install, run every benchmark under bench/ (each prints its ratio last)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Built on its own, without pip's wheel cache, so a cached native (AMX) build is never reused.
LLAMA_REQ := $(shell grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml)
LLAMA_STAMP := $(VENV)/.llama-portable

$(LLAMA_STAMP): | $(BIN)/python
	@echo "building $(LLAMA_REQ) (portable AVX2, ~5 min on 2 cores)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --no-cache-dir "$(LLAMA_REQ)"
	@touch $(LLAMA_STAMP)

# The benchmark data (extra `benchmarks`) goes in with --no-deps: bfcl-eval pins numpy==1.26.4
# and every provider SDK; only its data files are read.
BENCH_REQS := $(shell sed -n '/^benchmarks = \[/,/^\]/p' pyproject.toml | grep -o '"[^"]*"' | tr -d '"')

$(STAMP): pyproject.toml $(LLAMA_STAMP) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install --quiet --no-deps $(BENCH_REQS)
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/shardscope demo

# The gates. mypy and import-linter read packages from the file system, where shardscope's
# subpackages live in the repository's top-level folders: both run on a mirror laid out as the
# wheel is (.typecheck/shardscope/{tracer,scaffolds,ui,config,...}); paths are mapped back.
MIRROR := .typecheck
lint: install
	$(BIN)/ruff check .
	@rm -rf $(MIRROR) && mkdir -p $(MIRROR)/shardscope && cp -r shardscope/. $(MIRROR)/shardscope/
	@for d in tracer scaffolds ui config; do cp -r $$d $(MIRROR)/shardscope/$$d; done
	@rm -rf $(MIRROR)/shardscope/config/data && find $(MIRROR) -name __pycache__ -prune -exec rm -rf {} +
	@cp pyproject.toml $(MIRROR)/
	cd $(MIRROR) && ../$(BIN)/lint-imports --no-cache
	cd $(MIRROR) && ../$(BIN)/mypy -p shardscope 2>&1 | sed -E 's#^shardscope/(tracer|scaffolds|ui|config)/#\1/#'; exit $${PIPESTATUS[0]}

# pytest's exit code 5 (no tests collected) is a failure here, like any other non-zero code.
test: lint
	$(BIN)/python -m pytest

bench: install
	@set -e; for script in bench/[a-z]*.py; do \
		echo "== $$script"; $(BIN)/python $$script; \
	done

clean-venv:
	rm -rf $(VENV)
