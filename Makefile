# The two commands a newcomer needs:
#   make dev    run Message Memory on the embedded local stack (Kafka + Postgres, no Docker)
#   make test   run the test suite (starts its own Kafka broker and Postgres)
# Needs Python 3.11+, Java 17+ and Maven (Kafka's jars are fetched once from Maven Central).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test unit test-reverse install lock bench clean

# Installs exactly the locked versions, each checked against its hash; `make lock` renews them.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/msgmem dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The pure tests only (no broker, no Postgres): seconds.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q $(PYTEST_ARGS)

# The suite in reverse order (tests/conftest.py's --reverse): tests that lean on another's
# leftovers fail here.
test-reverse: $(STAMP)
	$(BIN)/python -m pytest -p no:randomly --reverse $(PYTEST_ARGS)

# Resolve pyproject.toml's dependencies again (newest allowed versions) into the two lock
# files: requirements.lock (the image) and requirements-dev.lock (make dev, make test, CI).
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header --quiet
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(LOCK) --upgrade -o requirements.lock
	$(LOCK) --upgrade --extra local --extra test -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache
