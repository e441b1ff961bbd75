# One entry point for people and CI. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo run test test-long lint bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The main job on embedded defaults: a local devnet, SQLite, the bundled sanctions snapshot.
demo: setup
	$(BIN)/screener demo

run: setup
	$(BIN)/screener run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy screener chains sanctions_lists screener_base

test: lint
	$(BIN)/pytest -q -m "not slow" $(PYTEST_ARGS)

# The long versions of the crash/fault suites (more kills, more faults) and of the fuzzing (more examples);
# not run in CI. Sizes: SCREENER_KILLS (crash loop, default 60), SCREENER_FAULT_STEPS (RPC faults, default 300).
test-long: setup
	SCREENER_LONG=1 $(BIN)/pytest -q -m slow $(PYTEST_ARGS)
	SCREENER_LONG=1 $(BIN)/pytest -q tests/test_reliability_fuzz.py $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
