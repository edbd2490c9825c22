# Two commands do everything from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench demo clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

PORT ?= 8050
# Reset links in e-mails use this base only (never a request's Host header); the loopback default suits
# `make run` on this machine. Set it to the address users reach in any other deployment.
DASHBOARD_PUBLIC_URL ?= http://127.0.0.1:$(PORT)

# Builds the demo warehouse when none is configured and none exists, then serves on $PORT (8050) with
# gunicorn: DASHBOARD_WORKERS processes (default 2 x cores, at most 8) of DASHBOARD_THREADS threads (4).
run: export PORT := $(PORT)
run: export DASHBOARD_PUBLIC_URL := $(DASHBOARD_PUBLIC_URL)
run: setup
	@if [ -z "$$DASHBOARD_WAREHOUSE_URL" ] && [ ! -f data/warehouse.duckdb ]; then \
		$(BIN)/dashboard demo --claims $${DEMO_CLAIMS:-200000} --seed 1; \
	fi
	@$(BIN)/dashboard marts refresh --if-needed  # a warehouse made by an older version
	@if [ -f data/demo-accounts.txt ]; then echo "demo accounts:"; sed 's/^/  /' data/demo-accounts.txt; fi
	@# the scheduler sends due saved reports (dashboard.schedules) beside the web server and stops with it
	$(BIN)/dashboard scheduler & scheduler=$$!; trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
		$(BIN)/dashboard serve --port $(PORT)

lint: setup
	$(BIN)/ruff check .

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

# `make bench` builds the 200k demo in a temporary directory; BENCH_ARGS="--warehouse PATH" times an existing
# warehouse instead (bench/results/duckdb-<size>.json); `python bench/compare.py A.json B.json` shows growth.
bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

demo: setup
	$(BIN)/dashboard demo --claims $${DEMO_CLAIMS:-200000} --seed $${SEED:-1}

clean:
	rm -rf $(VENV) build *.egg-info
