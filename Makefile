# One entry point for people and CI. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup system-tools demo run test test-long lint bench clean

setup: $(VENV)/.installed node_modules/.installed system-tools

# ssh-keygen signs and verifies reviewers' decisions (review.signing = "ssh") and the tests use it: Debian's
# openssh-client, installed when missing (needs root, as on the CI machine).
system-tools:
	@command -v ssh-keygen >/dev/null || { apt-get update -qq && apt-get install -y -qq openssh-client >/dev/null; }

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

# Two workers (the machine's two cores; most of a test's time is waiting on anvil, PostgreSQL and subprocesses).
# --dist loadfile keeps each file on one worker (module-scoped nodes); tests that create machine-wide login
# roles or OS accounts serialise on a lock (tests/conftest.py, global_identities).
TEST_WORKERS ?= 2

test: lint
	$(BIN)/pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The long versions of the crash/fault suites (more kills, more faults) and of the fuzzing (more examples);
# not run in CI. Sizes: SCREENER_KILLS (crash loop, default 60), SCREENER_FAULT_STEPS (RPC faults, default 300).
test-long: setup
	SCREENER_LONG=1 $(BIN)/pytest -q -m slow $(PYTEST_ARGS)
	SCREENER_LONG=1 $(BIN)/pytest -q tests/test_reliability_fuzz.py $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
