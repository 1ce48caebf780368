# loglens: two commands set everything up on a fresh machine.
#   make demo   generate a week of realistic logs, process them, print the summary
#   make test   every test of the project (what CI runs)

CARGO   ?= cargo
VENV    ?= .venv
PYTHON  ?= python3
LOGLENS := target/release/loglens
DEMO    ?= demo
DEMO_LINES ?= 1000000

.PHONY: demo dashboard test build venv engine-py lint rust-test py-test bench peers clean

build:
	$(CARGO) build --release --locked -p loglens-cli

demo: build venv
	rm -rf $(DEMO)
	$(LOGLENS) generate --out $(DEMO) --lines $(DEMO_LINES) --duration 7d --seed 42 --template-truth
	$(LOGLENS) process --config $(DEMO)/loglens.toml --data-dir $(DEMO)/loglens-data --detect
	@echo
	@echo "Data directory: $(DEMO)/loglens-data (Parquet; open with DuckDB, pandas or polars)"
	@echo "Incident and template ground truth: $(DEMO)/ground_truth.json, $(DEMO)/truth/ (score: bench/detect-score --gen $(DEMO) --data $(DEMO)/loglens-data)"
	@echo "Templates: $(LOGLENS) templates --data-dir $(DEMO)/loglens-data"
	@echo "Dashboard: make dashboard   (serves http://localhost:8501 over $(DEMO)/loglens-data)"

dashboard: build venv
	$(LOGLENS) dashboard --data-dir $(DEMO)/loglens-data

$(VENV)/.installed: python/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-cache-dir -r python/requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The Python package (python/loglens) with its Rust engine, installed editable into the venv.
engine-py: venv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --locked --quiet

lint: venv
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/ruff check python tests/python bench dashboard run_dask_dashboard.py
	$(VENV)/bin/ruff format --check python tests/python bench dashboard run_dask_dashboard.py

rust-test:
	$(CARGO) test --workspace --locked

py-test: venv build engine-py
	LOGLENS_BIN=$(abspath $(LOGLENS)) $(VENV)/bin/pytest -q tests/python

test: lint rust-test py-test

bench: build
	$(CARGO) bench -p loglens-benches

peers: build
	bash bench/peers.sh

clean:
	rm -rf target $(VENV) $(DEMO) loglens-data
