# `make run` and `make test` work on a fresh machine: each creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make run` lands the last complete month; MONTH=2025-06 picks another, PARTITION=2025-06-01 lands
# one raw day only. `make backfill` lands the raw days FROM..TO (default: the whole history) of
# ASSETS (default: all three). VERBOSE=1 shows Dagster's log live instead of in a file.
MONTH ?=
PARTITION ?=
FROM ?=
TO ?=
ASSETS ?=
VERBOSE ?=
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
INSTANCE := $(DAGSTER_HOME)/dagster.yaml
CLI_FLAGS = $(if $(VERBOSE),--verbose)

.PHONY: run backfill dev docs test test-fast lint postgres java chromium benchmark benchmark-bookkeeping benchmark-lake benchmark-scale screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# The first time, the sample instance config (pool limit, run queue) becomes the local one, so
# Dagster never warns that DAGSTER_HOME has none; an existing one is left as it is.
$(INSTANCE):
	@mkdir -p $(DAGSTER_HOME)
	@cp deploy/dagster.yaml $@

# Land a whole month of the three datasets from data.cityofnewyork.us: its raw days in
# data/collisions_raw_data (one ranged run), then its processed month in
# data/collisions_processed_data, then crashes, injured and KSI by borough.
run: $(BIN)/.installed $(INSTANCE)
	@$(BIN)/python -m nyc_collisions_dagster.cli run $(CLI_FLAGS) \
		$(if $(PARTITION),--partition "$(PARTITION)",$(if $(MONTH),--month "$(MONTH)"))

# The mass upload: the raw days FROM..TO of ASSETS as one ranged run.
backfill: $(BIN)/.installed $(INSTANCE)
	@$(BIN)/python -m nyc_collisions_dagster.cli backfill $(CLI_FLAGS) \
		$(if $(FROM),--from "$(FROM)") $(if $(TO),--to "$(TO)") $(if $(ASSETS),--assets "$(ASSETS)")

# Runs record a range's days a batch at a time (raw/recording.py's BATCHED_INSTANCE), unless the
# shell sets DAGSTER_EVENT_BATCH_SIZE itself.
dev: export DAGSTER_EVENT_BATCH_SIZE ?= 1000
dev: $(BIN)/.installed $(INSTANCE)
	$(BIN)/dagster dev

# The UI's screenshots in docs/, taken with Debian's chromium; not part of CI.
screenshots: $(BIN)/.installed chromium
	$(BIN)/python -m scripts.screenshots

# Served at http://127.0.0.1:8000 while you edit; the suite builds them strictly.
docs: $(BIN)/.installed
	$(BIN)/mkdocs serve

# Everything CI checks: lint, types, import contracts, then every tier on both cores (the strict
# docs build is a unit test). Work stealing keeps both busy while a few long tests finish.
PYTEST_CORES := -n 2 --dist worksteal
test: lint postgres java chromium
	$(BIN)/python -m pytest $(PYTEST_CORES)

# The edit-test loop: the unit and integration tiers on both cores, each test on one transport,
# without the real-row end-to-end runs.
test-fast: $(BIN)/.installed
	SUITE_TRANSPORTS=soda2 $(BIN)/python -m pytest -m "unit or (integration and not real_data)" $(PYTEST_CORES)

LINTED := nyc_collisions_dagster nyc_collisions_dagster_tests benchmarks scripts
lint: $(BIN)/.installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

# The deploy tests start Debian's PostgreSQL server themselves; a fresh machine (CI runs as root)
# gets the package here.
postgres:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }

# The dashboard's browser test drives Debian's Chromium through Playwright, which cannot download
# a browser of its own here.
chromium:
	command -v chromium >/dev/null 2>&1 || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

# Spark, which reads the processed layer in the suite, runs on Java 17 or later.
java:
	command -v java >/dev/null 2>&1 || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y default-jre-headless; }

# The mass upload's peers include dlt, which only this benchmark needs.
$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@

benchmark: $(BIN)/.installed-bench
	$(BIN)/python -m benchmarks mass_upload

# What recording a day costs Dagster's event log: its stock storages against the project's pooled
# ones, on SQLite and PostgreSQL (365 days of a null asset, about 4 minutes).
benchmark-bookkeeping: $(BIN)/.installed postgres
	$(BIN)/python -m benchmarks bookkeeping

# The processed layer: its build against a plain read, and three queries over raw and processed.
benchmark-lake: $(BIN)/.installed
	$(BIN)/python -m benchmarks lake

# The three datasets over 1 month, 1 year and 4 years, each one run, against their floors;
# FULL=1 adds the whole history, SHARE=1 Dagster's share on SQLite and PostgreSQL.
benchmark-scale: $(BIN)/.installed postgres
	$(BIN)/python -m benchmarks scale $(if $(FULL),--full) $(if $(SHARE),--share)

clean:
	rm -rf $(VENV) .dagster_home data .pytest_cache
