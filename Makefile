# `make run` and `make test` work on a fresh machine: each creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The last complete month; `make run MONTH=2025-06` picks another, `make run PARTITION=2025-06-01`
# lands one raw day only.
MONTH ?= $(shell date -d "$$(date +%Y-%m-01) -1 day" +%Y-%m)
MONTH_END = $(shell date -d "$(MONTH)-01 +1 month -1 day" +%F)
PARTITION ?=
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run dev docs test test-fast lint postgres java benchmark benchmark-lake benchmark-scale screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Land a whole month of the three datasets from data.cityofnewyork.us: its raw days in
# data/collisions_raw_data (one ranged run), then its processed month in data/collisions_processed_data.
run: $(BIN)/.installed
	mkdir -p $(DAGSTER_HOME)
ifneq ($(PARTITION),)
	$(BIN)/dagster asset materialize -m nyc_collisions_dagster.definitions \
		--select crashes,persons,vehicles --partition $(PARTITION)
else
	$(BIN)/dagster asset materialize -m nyc_collisions_dagster.definitions \
		--select crashes,persons,vehicles --partition-range $(MONTH)-01...$(MONTH_END)
	$(BIN)/dagster asset materialize -m nyc_collisions_dagster.definitions \
		--select processed/crashes,processed/persons,processed/vehicles --partition $(MONTH)
	$(BIN)/python -m nyc_collisions_dagster.lake \
		"SELECT crash_borough, count(*) AS crashes, sum(number_of_persons_injured) AS injured, sum(ksi) AS ksi FROM crashes GROUP BY ALL ORDER BY 2 DESC"
endif

# The first time, the sample instance config (pool limit, run queue) becomes the local one.
dev: $(BIN)/.installed
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

# Needs Debian's chromium (apt-get install chromium); not part of CI.
screenshots: $(BIN)/.installed
	$(BIN)/python -m scripts.screenshots

# Served at http://127.0.0.1:8000 while you edit; the suite builds them strictly.
docs: $(BIN)/.installed
	$(BIN)/mkdocs serve

# Everything CI checks: lint, types, import contracts, then every tier on both cores (the strict
# docs build is a unit test). Work stealing keeps both busy while a few long tests finish.
PYTEST_CORES := -n 2 --dist worksteal
test: lint postgres java
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

# The processed layer: its build against a plain read, and three queries over raw and processed.
benchmark-lake: $(BIN)/.installed
	$(BIN)/python -m benchmarks lake

# The three datasets over 1 month, 1 year and 4 years, each one run, against their floors;
# FULL=1 adds the whole history, SHARE=1 Dagster's share on SQLite and PostgreSQL.
benchmark-scale: $(BIN)/.installed postgres
	$(BIN)/python -m benchmarks scale $(if $(FULL),--full) $(if $(SHARE),--share)

clean:
	rm -rf $(VENV) .dagster_home data .pytest_cache
