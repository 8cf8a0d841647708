# Two entry points: `make run` (the default experiment on the embedded digits) and `make test`.
# Each creates .venv if it is missing. torch is pinned first so that pip never pulls CUDA wheels.
# `make run` installs only what the default experiment runs; `make test` adds the test tools and the
# ray, labelstudio, serve and kmedoids extras, so that the tests of `--backend ray`, Label Studio (push, pull and
# the ML backend) and FasterPAM run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.seqgcn-run
TEST_STAMP := $(VENV)/.seqgcn-test
# The Label Studio server (for the live push/pull test) pins many packages, so it gets its own venv;
# its database is migrated once into a template that the test copies (the server then starts in seconds).
LS_VERSION := 1.23.2
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.seqgcn-label-studio-$(LS_VERSION)

.PHONY: run test bench clean

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,ray,labelstudio,serve,kmedoids,encoder]' onnx
	touch $(TEST_STAMP)

$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet label-studio==$(LS_VERSION)
	rm -rf $(LS_VENV)/seqgcn-template && mkdir -p $(LS_VENV)/seqgcn-template
	LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false $(LS_VENV)/bin/label-studio version --data-dir $(LS_VENV)/seqgcn-template > /dev/null
	touch $(LS_STAMP)

run: $(RUN_STAMP)
	$(BIN)/seqgcn run

# -n auto: one pytest worker per core (pytest-xdist); --dist loadfile keeps a file's tests, and so its module
# fixtures (a Ray instance, a Label Studio server), on one worker
test: $(TEST_STAMP) $(LS_STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

bench: $(RUN_STAMP)
	$(BIN)/python benchmarks/sampler_speed.py

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info src/*.egg-info
