# Two commands: `make demo` and `make test`. Each sets up .venv itself on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cutover demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	# Four workers on two cores: most tests wait (on Postgres, subprocesses, tmux, HTTP),
	# not compute. Measured here: 9 min 32 s with two workers, 5 min 58 s with four.
	$(BIN)/python -m pytest -n 4

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

# One table (bench/run.py says what is in it); about 25 min with the 15-minute RSS soak
# (SOAK_S=900). Needs tmux. Then the watcher's accelerated week (about 1 min).
bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/watch.py --days 7

clean:
	rm -rf $(VENV) .pytest_cache
