# The two set-up-and-go commands: `make demo` and `make test`.
# Each creates .venv from the repo's own files (pyproject.toml + requirements-dev.lock).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv bytecode bench clean chromium

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# ame's own modules, compiled once: with PYTHONDONTWRITEBYTECODE set (as here)
# an editable install would otherwise recompile them on every `ame` command.
# compileall skips modules whose bytecode is current, so this costs nothing twice.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src

demo: bytecode
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# The browser tests (tests/ui) drive Debian's chromium; they fail, never skip, without it.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: lint bytecode chromium
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -n 2 --dist loadgroup -q

bench: bytecode
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
