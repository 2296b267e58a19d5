# friendscrape: `make demo` and `make test` set up everything they need on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser tracer demo test check lint types format bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# The BigQuery-compatible test server needs DuckDB's spatial extension; install it
	# from its wheel so nothing is downloaded at start-up.
	$(BIN)/python -c "from duckdb_extensions import import_extension; import_extension('spatial')"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/friendscrape demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

types: $(STAMP)
	$(BIN)/mypy

check: lint types

# The report test renders `friendscrape report` in Debian's Chromium; install it where we can.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && apt-get install -y -q --no-install-recommends chromium; \
	  else echo "chromium not found and cannot be installed here: the report test will skip"; fi; }

# The tests that count an export's write calls to stdout run it under strace.
tracer:
	@command -v strace >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && apt-get install -y -q --no-install-recommends strace; \
	  else echo "strace not found and cannot be installed here: the write-count tests will skip"; fi; }

test: check browser tracer
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

docs: $(STAMP)
	$(BIN)/python -m friendscrape.configdoc > docs/configuration.md

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache
