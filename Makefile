# Every target bootstraps what it needs from the project's own files: a fresh machine needs
# only python3 (>= 3.11), make and node.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed

.PHONY: help install test run lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV_STAMP)  ## create .venv with the project and its dev tools

test: $(VENV_STAMP)  ## run the whole test suite (unit, integration, infra, e2e)
	$(PY) -m pytest

clean:  ## remove build output and local data (keeps .venv)
	rm -rf cdk.out build .pytest_cache .leadpipe
