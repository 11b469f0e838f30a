# Clean IT — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck unit test-external bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Embedded PostgreSQL + migrations + demo data + API + worker + demo site, on PORT (8000).
run: install
	$(BIN)/cleanit run

## Lint, type-check, layer contracts and the whole test suite (embedded PostgreSQL).
test: install lint typecheck
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy src

## The storage, API and system tests again, against an external PostgreSQL server.
## Example: make test-external CLEANIT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
test-external: install
	@test -n "$(CLEANIT_TEST_DATABASE_URL)" || (echo "set CLEANIT_TEST_DATABASE_URL" && exit 2)
	CLEANIT_TEST_DATABASE_URL=$(CLEANIT_TEST_DATABASE_URL) $(BIN)/pytest tests/services tests/api tests/system tests/cli

bench: install
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
