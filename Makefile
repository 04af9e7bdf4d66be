# The two commands of the README: `make run` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run replay-demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,plot]'
	touch $(STAMP)

run: $(STAMP)
	bash scripts/demo.sh

replay-demo: $(STAMP)
	$(BIN)/watchtower generate --seed 1 --threads 2000 --hours 6 -o demo.jsonl
	$(BIN)/watchtower replay demo.jsonl --config config/watchtower.yaml --alerts-out alerts.jsonl

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	bash scripts/ensure-servers.sh
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/live.py

clean:
	rm -rf $(VENV) demo.jsonl alerts.jsonl .mypy_cache .ruff_cache .pytest_cache
