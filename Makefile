# tdgen: `make reproduce` and `make test` work on a fresh machine with Python 3.11, 3.12 or 3.13.
# PYTHON picks the interpreter (PYTHON=python3.13 make test); .ci/find-python finds it on PATH or
# among pyenv's versions. Each Python gets its own venv (.venv for 3.11, .venv-3.X otherwise),
# filled from its lock file requirements/py3.X.txt (the tested set), then tdgen itself, editable.
PYTHON ?= python3.11
PY_MINOR := $(or $(filter 3.%,$(patsubst python%,%,$(notdir $(PYTHON)))),$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
# Extras make installs; torch only on 3.11, where its CPU build lies on disk (PyPI's Linux torch
# for 3.12/3.13 is the CUDA build, several GB), with stable-baselines3 (sb3): the torch tests skip
# elsewhere.
EXTRAS_3.11 := dev,atari,procgen,torch,sb3,sweep,dist,docs
EXTRAS_OTHER := dev,atari,procgen,sweep,dist,docs
EXTRAS := $(or $(EXTRAS_$(PY_MINOR)),$(EXTRAS_OTHER))
VENV := $(if $(filter 3.11,$(PY_MINOR)),.venv,.venv-$(PY_MINOR))
LOCK := requirements/py$(PY_MINOR).txt
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= results
PYTEST_ARGS ?=

.PHONY: reproduce test test-fast lint docs docs-pages bench bench-docs dist lock print-extras clean

requirements/py%.txt:
	@echo "no lock file $@ for Python '$(PY_MINOR)': tested are 3.11, 3.12, 3.13" >&2; exit 2

$(BIN)/python: | $(LOCK)
	py=$$(.ci/find-python $(PYTHON)) && "$$py" -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/tdgen reproduce --scale quick --out $(OUT)
	@echo "Report: $(OUT)/report.md (and $(OUT)/report.html)"

# Every test; test-fast leaves out those marked slow (what .ci/run runs on its second Python).
# pytest-xdist runs them on one worker per core (PYTEST_WORKERS=0: in this process); a module's
# tests, or a class's, stay on one worker (--dist loadscope), so a module's trained fixture trains
# once; scopes go out in collection order, where tests/conftest.py puts the longest first (xdist's
# default order, most tests first, left the three envpool smoke chains to the end).
PYTEST_WORKERS ?= auto
XDIST := -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder
test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# bench measures the update matrix (benchmarks/self/update_rank.py, tens of minutes on 2 cores) and
# records it under benchmarks/results/; bench-docs writes docs/benchmarks.md from the records
# (offline, a second).
bench: $(STAMP)
	$(BIN)/python benchmarks/self/update_rank.py
	$(BIN)/python benchmarks/render.py

bench-docs: $(STAMP)
	$(BIN)/python benchmarks/render.py

# Wheel and sdist in dist/, checked by twine, and the wheel installed without extras (newest
# releases in range, not the lock) into a fresh venv, dist/venv, where the installed version must
# equal tdgen.__version__ and `tdgen list` and a theory experiment must run.
# The documentation site (Sphinx, MyST pages in docs/), warnings as errors; it builds offline.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# The experiment pages (docs/experiments/) and the agents' results tables, from a reproduction
# in $(OUT) (after `make reproduce`).
docs-pages: $(STAMP)
	$(BIN)/python -m tdgen.experiments.pages $(OUT) docs

dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	py=$$(.ci/find-python $(PYTHON)) && "$$py" -m venv dist/venv
	dist/venv/bin/python -m pip install --quiet dist/*.whl
	cd dist && venv/bin/python -c 'import importlib.metadata as m, tdgen; v = m.version("tdgen"); \
		assert v == tdgen.__version__, (v, tdgen.__version__); print("tdgen", v)'
	cd dist && venv/bin/tdgen --version && venv/bin/tdgen list && venv/bin/tdgen reproduce fig9_kernel_td --out venv/results
	mkdir -p dist/sdist && tar -xzf dist/*.tar.gz -C dist/sdist
	$(MAKE) -C dist/sdist/$$(ls dist/sdist) test-fast PYTHON=$(PYTHON)
	@echo "dist: $$(echo dist/*.whl dist/*.tar.gz) built, checked, installed without extras; the sdist's fast tests pass"

# Regenerate every lock file after a change to pyproject.toml (needs uv).
lock:
	requirements/lock.sh

print-extras:
	@echo $(EXTRAS)

clean:
	rm -rf .venv .venv-3.* $(OUT) dist build docs/_build
