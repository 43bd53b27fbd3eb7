# The two commands a newcomer needs:
#   make dev    run Message Memory on the embedded local stack (Kafka + Postgres, no Docker)
#   make test   run the test suite (starts its own Kafka broker and Postgres)
# Needs Python 3.11+, Java 17+ and Maven (Kafka's jars are fetched once from Maven Central).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,test]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/msgmem dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
