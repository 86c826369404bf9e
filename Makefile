# The commands people type. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLINIQ := $(VENV)/bin/cliniq
PYTHON ?= python3
export HF_HUB_OFFLINE := 1

.PHONY: setup run test test-all lint bench index clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first: any other spec pulls GBs of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ui,llm,lexicon]"
	touch $@

index: setup
	$(CLINIQ) ingest corpus/

SEED ?= What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?

run: index
	$(CLINIQ) ask "$(SEED)"
	$(CLINIQ) chat

test: setup
	$(VENV)/bin/pytest

test-all: setup
	$(VENV)/bin/pytest -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/build_lexicon.py --check

clean:
	rm -rf .cliniq reports
