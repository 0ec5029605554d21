# One command for everything a developer or CI does. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# sam build needs a real python3.12 binary first on PATH; the pyenv shim is not one.
PY312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export PYTHONPATH := $(CURDIR):$(CURDIR)/shared

.PHONY: help chromium install dev invoke test lint typecheck pytest catalogue initdb build validate bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

REQUIREMENTS := shared/requirements.txt functions/tasks/requirements.txt infra/requirements.txt

$(VENV)/.installed: pyproject.toml $(REQUIREMENTS)
	@test -n "$(PY312)" || { echo "Python 3.12 is required (python3.12 on PATH or under pyenv)"; exit 1; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python $(addprefix -r ,$(REQUIREMENTS)) --group dev
	touch $@

$(SAM_VENV)/.installed:
	$(PY312) -m venv $(SAM_VENV)
	$(VENV)/bin/uv pip install -q --python $(SAM_VENV)/bin/python aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

# The docs-page test drives Debian's Chromium (Playwright's own browser download cannot run here).
chromium:
	@command -v chromium >/dev/null || { test "$$(id -u)" = 0 && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "Chromium is needed for the docs-page test: apt-get install chromium"; exit 1; }

install: $(VENV)/.installed $(SAM_VENV)/.installed chromium ## .venv (app + dev tools), .venv-sam (SAM CLI), Chromium

dev: $(VENV)/.installed ## run everything locally: gateway on :3000, embedded datastores (Ctrl-C stops)
	python -m infra.dev

invoke: $(VENV)/.installed ## invoke one function: make invoke FN=AuthFunction EVENT=events/auth/get_public_key.json
	python -m infra.local_gateway invoke $(FN) --event $(EVENT)

test: install lint typecheck pytest ## everything CI runs: lint, types, the whole test suite

lint: $(VENV)/.installed ## ruff check and format check
	ruff check .
	ruff format --check .

typecheck: $(VENV)/.installed ## mypy --strict over the shared layer, functions and infra
	mypy shared/multidb functions/*/*_fn infra

pytest: install ## the test suite on real PostgreSQL/Redis, then the API tests again on the embedded defaults
	python -m pytest --durations=10 $(PYTEST_ARGS)
	TEST_EMBEDDED=1 python -m pytest tests/integration -q --durations=10 \
		--deselect tests/integration/test_sam_build.py --deselect tests/integration/test_template.py $(PYTEST_ARGS)

catalogue: $(VENV)/.installed ## regenerate shared/multidb/catalogue.json from the functions' routes
	python -m infra.catalogue

initdb: $(VENV)/.installed ## migrate, sync the route catalogue, create the admin user
	python -m infra.initdb

validate: install ## cfn-lint and sam validate --lint on template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint

build: install ## sam build (functions + shared layer) into .aws-sam/build
	$(SAM_VENV)/bin/sam build

bench: $(VENV)/.installed ## cold start, memory and warm latency, as ratios to same-run baselines
	python tests/benchmarks/cold_start.py

clean: ## remove virtualenvs, build output and local data
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
