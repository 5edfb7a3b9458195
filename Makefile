# Two commands do all the set-up on a fresh machine:
#   make serve   - create .venv, install, find or install Chromium, run the API (SQLite in ./data)
#   make test    - the same set-up, then the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup serve demo test lint bench clean

setup: $(STAMP)
	@bash scripts/ensure-chromium.sh $(PY)

$(STAMP): pyproject.toml
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shortvid needs Python 3.11 or newer")'
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

serve: setup
	$(VENV)/bin/shortvid serve $(ARGS)

demo: setup
	$(VENV)/bin/shortvid serve --offline --data-dir data-demo $(ARGS)

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
