# tdgen: `make reproduce` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= results

.PHONY: reproduce test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,atari,procgen,torch,sweep]'
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/tdgen reproduce --scale quick --out $(OUT)
	@echo "Report: $(OUT)/report.md (and $(OUT)/report.html)"

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/update_rank.py

clean:
	rm -rf $(VENV) $(OUT)
