# Two commands do all the set-up on a fresh machine:
#   make chat   installs everything into .venv, builds the index on first use, opens the web chat
#   make test   installs everything (with test tools and Chromium) and runs the whole test suite
#   make docs   builds the documentation site into site/
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch, installed first: an unpinned torch would pull gigabytes of CUDA packages.
# torch==2.13.0 resolves to the CPU wheel 2.13.0+cpu where pip can see it (the project's machines
# have it in pip's find-links); elsewhere take PyTorch's CPU index:
#   make chat TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0

.PHONY: install install-test install-bench install-docs chat test lint format browser-deps bench docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e .
	touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e ".[test]"
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) install --quiet -e ".[bench]"
	touch $@

install-bench: $(VENV)/.installed-bench

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP) install --quiet -e ".[docs]"
	touch $@

install-docs: $(VENV)/.installed-docs

# The documentation site, into site/; --strict: a broken link, a page missing from the navigation
# or a docstring mkdocstrings cannot read fails the build (tests/test_docs.py runs the same).
docs: install-docs
	$(VENV)/bin/mkdocs build --strict

bench: install-bench
	$(PY) -m bench.run --json results/bench.json

chat: install
	$(PY) app.py

browser-deps:
	sh scripts/install-browser.sh

test: install-test browser-deps
	$(VENV)/bin/pytest -q

lint: install-test
	$(VENV)/bin/ruff check qa tests bench app.py
	$(VENV)/bin/ruff format --check qa tests bench app.py

format: install-test
	$(VENV)/bin/ruff format qa tests bench app.py
	$(VENV)/bin/ruff check --fix qa tests bench app.py

clean:
	rm -rf $(VENV) index/CURRENT index/snapshots index/cache .pytest_cache site
