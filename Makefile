# `make run` and `make test` work on a fresh machine: each creates the virtualenv it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PARTITION ?= 2024-01-03
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run dev test postgres benchmark screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Materialize one day of the three datasets from data.cityofnewyork.us into data/collisions_raw_data.
run: $(BIN)/.installed
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster asset materialize -m nyc_collisions_dagster.definitions \
		--select crashes,persons,vehicles --partition $(PARTITION)

# The first time, the sample instance config (pool limit, run queue) becomes the local one.
dev: $(BIN)/.installed
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

# Needs Debian's chromium (apt-get install chromium); not part of CI.
screenshots: $(BIN)/.installed
	$(BIN)/python -m scripts.screenshots

test: $(BIN)/.installed postgres
	$(BIN)/python -m pytest

# The deploy tests start Debian's PostgreSQL server themselves; a fresh machine (CI runs as root)
# gets the package here.
postgres:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; }

benchmark: $(BIN)/.installed
	$(BIN)/python benchmarks/mass_upload.py

clean:
	rm -rf $(VENV) .dagster_home data .pytest_cache
