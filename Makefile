# geoapp: the two commands are `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: install serve test lint bench clean

$(BIN)/geoapp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/geoapp

## Install everything and run the web app on the embedded Jiaozuo data.
serve: install
	$(BIN)/geoapp serve --host $(HOST) --port $(PORT)

## Install everything and run the whole test suite.
test: install
	bash scripts/system-deps.sh
	$(BIN)/ruff check geoapp tests bench
	$(BIN)/python -m pytest -n 2 --dist loadfile

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache instance
