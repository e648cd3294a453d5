# One entry point for a fresh machine: every target installs what it needs from this repository's own files.
SHELL := /bin/bash
.DEFAULT_GOAL := help

TOOLS   := $(CURDIR)/.tools
UV      := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/venv/bin/uv)
PG_BIN  := /usr/lib/postgresql/15/bin
PYTEST_ARGS ?=
# The SDK and its stand-ins support Python 3.10-3.13; `make test` proves their tests on both ends besides the
# default interpreter.
SDK_PYTHONS ?= 3.10 3.13

-include mk/*.mk

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(TOOLS)/venv/bin/uv:
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet uv

.PHONY: uv
uv: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/venv/bin/uv)

.PHONY: sync
sync: uv ## install the locked workspace (SDK, service, dev tools) into .venv
	$(UV) sync --locked --compile-bytecode

.PHONY: postgres
postgres: ## install the PostgreSQL 15 server binaries the tests start (Debian package)
	@if [ ! -x $(PG_BIN)/initdb ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "PostgreSQL 15 server missing: run 'sudo apt-get install postgresql-15' (make test needs initdb/pg_ctl)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
	fi
	@$(PG_BIN)/postgres --version

.PHONY: lint
lint: sync ## ruff check, ruff format --check, mypy --strict on sdk/, testing/ and service/
	$(UV) run ruff check sdk testing service tests hooks agent_template_jinja.py docs/hooks demo bench mk
	$(UV) run ruff format --check sdk testing service tests hooks agent_template_jinja.py docs/hooks demo bench mk
	$(UV) run mypy --strict sdk/src testing/src service/src demo agent_template_jinja.py mk/release_check.py

.PHONY: test
test: lint postgres template-tools ## the whole suite: linters, then pytest over tests/, then the SDK on Python 3.10 and 3.13
	$(UV) run pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-sdk-pythons

# The markers are set by tests/conftest.py from each test's folder and fixtures (see pyproject.toml).
FAST_MARKERS := not postgres and not worker and not template and not slow

.PHONY: test-fast
test-fast: sync template-tools ## the tests that need no PostgreSQL, no worker processes and no bakes (a couple of minutes)
	$(UV) run pytest -q -p no:cacheprovider -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

.PHONY: test-sdk-pythons
test-sdk-pythons: uv ## the SDK's tests and its stand-ins' (tests/testing) on each of SDK_PYTHONS
	@set -e; for v in $(SDK_PYTHONS); do \
	  py=$$(ls -d $(HOME)/.pyenv/versions/$$v.*/bin/python$$v 2>/dev/null | head -n1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v || true); \
	  if [ -z "$$py" ]; then echo "Python $$v not found (pyenv or PATH): install python$$v to run the SDK tests on it"; exit 1; fi; \
	  echo "== SDK tests on $$($$py --version)"; \
	  UV_PROJECT_ENVIRONMENT=$(CURDIR)/.venv-py$$v $(UV) sync --locked --quiet --python "$$py"; \
	  $(CURDIR)/.venv-py$$v/bin/python -m pytest tests/sdk tests/testing -q -p no:cacheprovider; \
	done

.PHONY: demo
demo: sync ## bake an agent, run it with the platform service (SQLite) and the stand-ins, print a report
	$(UV) run python demo/run.py

.PHONY: clean
clean: ## remove the virtualenv, tool installs and caches
	rm -rf .venv $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
