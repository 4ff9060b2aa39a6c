# Equipment Marketplace runbook library.
#   make demo    set up everything and run the health check against the embedded demo stack
#   make test    lint + unit and integration tests against the reference stack
#   make unit    the tests that need no Docker engine and no service (under a minute)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := stack/bin/stack.sh
PYTEST_ARGS ?=

.PHONY: help venv venv-dev docker stack-build stack-up stack-down stack-reset stack-status demo lint test unit modules integration bench clean

help:
	@sed -n 's/^#   //p' Makefile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime-installed
venv-dev: $(VENV)/.dev-installed

docker:
	@bash scripts/ensure-docker.sh

stack-build: docker
	@bash $(STACK) build

stack-up: docker
	@bash $(STACK) up

stack-down:
	@bash $(STACK) down

stack-reset: docker
	@bash $(STACK) reset

stack-status:
	@bash $(STACK) status

demo: venv stack-up
	$(BIN)/ansible-playbook playbooks/health-check.yml -i inventory/demo; rc=$$?; \
	  echo; echo "Report: $$(pwd)/reports/health-check/demo-latest.json (Markdown beside it)"; exit $$rc

lint: venv-dev
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --profile production --offline
	$(BIN)/ruff check .

unit: venv-dev
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

modules: venv-dev docker
	$(BIN)/pytest tests/modules $(PYTEST_ARGS)

integration: venv-dev docker
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test: lint venv-dev docker
	$(BIN)/pytest tests $(PYTEST_ARGS)

bench: venv-dev stack-up
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf artifacts reports .pytest_cache .ruff_cache
