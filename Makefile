# Two entry points: `make run` (the default experiment on the embedded digits) and `make test`.
# Each creates .venv if it is missing. torch is pinned first so that pip never pulls CUDA wheels.
# The ray extra is installed too, so that the tests of `--backend ray` run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.seqgcn-installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/seqgcn run

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/sampler_speed.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
