# The two commands: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv on first use and install everything needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck fast bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch pinned explicitly: a CPU build on these machines; see README "Installing".
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[train,corpus,ray,hf,tensorboard,mlflow,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/climb demo --out demo-out

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup

fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m 'not slow'

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/regmix.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
