# Every target bootstraps what it needs from the project's own files: a fresh machine needs
# only Python at the Lambda runtime's version (3.13), make and node.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

# The venv runs the deployed interpreter, so the tests exercise what Lambda runs: its version is
# read from infra/bundling.py, the one place that names the runtime.
LAMBDA_PYTHON := $(shell sed -n 's/^LAMBDA_PYTHON_VERSION = "\([0-9.]*\)"$$/\1/p' infra/bundling.py)
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(shell pyenv root 2>/dev/null),$(HOME)/.pyenv)/versions
# python3.X on PATH if it runs (a pyenv shim may not), else pyenv's newest 3.X.N (free-threaded builds left out).
FOUND_PYTHON := $(shell if python$(LAMBDA_PYTHON) -c '' >/dev/null 2>&1; then echo python$(LAMBDA_PYTHON); \
	else ls -1d $(PYENV_VERSIONS)/$(LAMBDA_PYTHON).[0-9]*/bin/python$(LAMBDA_PYTHON) 2>/dev/null \
	| grep -E '/$(subst .,\.,$(LAMBDA_PYTHON))\.[0-9]+/bin/' | sort -V | tail -n 1; fi)
PYTHON ?= $(FOUND_PYTHON)
PYTHON_VERSION := $(if $(PYTHON),$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
# The stamp names the venv's Python, so a .venv made by another interpreter is rebuilt, not reused.
VENV_STAMP := $(VENV)/.installed-python$(or $(PYTHON_VERSION),-missing)

# jsii (under aws-cdk-lib) warns on every start under node 20; the CLI must not phone home.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
STAGE ?= dev
CDK := npx --no-install cdk
CDK_FLAGS := -c stage=$(STAGE) --no-notices --no-version-reporting
NODE_STAMP := node_modules/.installed
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
CHROMIUM := /usr/bin/chromium
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get

.PHONY: help install lint test fuzz run bench soak synth deploy diff clean reset-local

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV_STAMP): pyproject.toml
	@[ -n "$(PYTHON_VERSION)" ] || { echo "make: no working Python $(LAMBDA_PYTHON) (the functions deploy on Lambda python$(LAMBDA_PYTHON), set in infra/bundling.py, and the tests must run on it): install python$(LAMBDA_PYTHON) or 'pyenv install $(LAMBDA_PYTHON)', or pass PYTHON=/path/to/python$(LAMBDA_PYTHON) (PYTHON=python3 on 3.11+ still runs make run; make test will fail on it)" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# checkov (a rule set the infra tests run) pins an old boto3 that the project cannot share: it gets its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	@[ -n "$(PYTHON_VERSION)" ] || { echo "make: no working Python $(LAMBDA_PYTHON) for checkov's venv" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM):
	$(APT_GET) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends chromium

install: $(VENV_STAMP) $(NODE_STAMP) $(CHROMIUM)  ## create .venv and node_modules, install Chromium for the browser tests

lint: $(VENV_STAMP)  ## ruff: the one formatter and linter of the tree
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(VENV_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) $(CHROMIUM) lint  ## lint, then the whole test suite (functions, infra, CLI, local runtime, e2e with a real browser)
	$(PY) -m pytest

# Fresh seeds, 10,000 examples per property (the "fuzz" profile in tests/conftest.py); failures are kept
# in .leadpipe/hypothesis and replayed first next time. Not part of make test.
FUZZ_TESTS ?= tests/functions tests/e2e/test_openapi_contract.py tests/e2e/test_openapi_stateful.py
FUZZ_TEST_TIMEOUT ?= 7200
fuzz: $(VENV_STAMP)  ## explore: fresh random inputs, >= 10,000 per property, API fuzzed (negative + stateful) against the local runtime
	LEADPIPE_HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -p no:cacheprovider -q --timeout=$(FUZZ_TEST_TIMEOUT) --hypothesis-show-statistics $(FUZZ_TESTS)

PORT ?= 8080
run: $(VENV_STAMP)  ## start the whole pipeline on this machine: http://127.0.0.1:$(PORT)/ (Ctrl-C stops)
	$(VENV)/bin/leadpipe run --stage $(STAGE) --port $(PORT)

bench: $(VENV_STAMP)  ## measure performance as ratios against side-by-side baselines (~10 min; not part of make test)
	$(PY) -m bench.run

soak: $(VENV_STAMP)  ## 20,000 leads through the local runtime; fails unless accepted = stored + DLQ, 0 lost, 0 duplicated (<10 min)
	$(PY) -m bench.soak

synth: $(VENV_STAMP) $(NODE_STAMP)  ## synthesize the stack offline (STAGE=dev|prod), bundling both functions
	$(CDK) synth $(CDK_FLAGS) --quiet

diff: $(VENV_STAMP) $(NODE_STAMP)  ## show what a deploy would change (needs AWS credentials)
	$(CDK) diff $(CDK_FLAGS)

deploy: $(VENV_STAMP) $(NODE_STAMP)  ## deploy the stack (needs AWS credentials and a bootstrapped account)
	$(CDK) deploy $(CDK_FLAGS) --require-approval broadening

clean:  ## remove build and test output (keeps .venv and the local runtime's stored leads)
	rm -rf cdk.out build .pytest_cache .leadpipe/pytest

reset-local:  ## delete the local runtime's data: its PostgreSQL (stored leads), logs, queue snapshot
	rm -rf .leadpipe/local
