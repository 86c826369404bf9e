# The commands people type. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLINIQ := $(VENV)/bin/cliniq
PYTHON ?= python3
export HF_HUB_OFFLINE := 1

.PHONY: setup setup-llm-server run ui test test-all lint bench eval eval-dev index clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch first: any other spec pulls GBs of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,ui,llm,lexicon,serve]"
	# The mpnet judge's base model, hash-checked; offline, one line says why and setup goes on.
	$(PY) scripts/fetch_mpnet.py --optional
	touch $@

# The real OpenAI-compatible server used by the LLM-path tests: compiles llama.cpp (minutes,
# once; pip caches the wheel). Without it those tests skip with a message.
setup-llm-server: $(VENV)/.llm-server

$(VENV)/.llm-server: $(VENV)/.installed
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install -q -e ".[llm-server]"
	touch $@

# Every figure in docs/benchmarks.md, each beside its baseline from the same run (an hour or more
# on 2 cores the first time: the 100k-chunk index is embedded once and kept in $(BENCH_DIR)).
BENCH_DIR ?= /tmp/cliniq-bench
bench: setup
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) -m ingest.embedding
	CLINIQ_BENCH_DIR=$(BENCH_DIR) $(PY) scripts/bench_ingest.py --runs 2 --json $(BENCH_DIR)/ingest.json
	CLINIQ_BENCH_DIR=$(BENCH_DIR) $(PY) scripts/bench_retrieval.py --json $(BENCH_DIR)/quality.json
	CLINIQ_BENCH_DIR=$(BENCH_DIR) $(PY) scripts/bench_retrieval.py --legacy --backends auto \
		--json $(BENCH_DIR)/quality-legacy.json
	CLINIQ_BENCH_DIR=$(BENCH_DIR) $(PY) scripts/bench_answer.py --rounds 2 \
		--json $(BENCH_DIR)/latency.json
	$(PY) scripts/bench_report.py $(BENCH_DIR)

# The bundled faithfulness suites and the held-out general suite (MedQuAD pages of other
# conditions, its own index; skipped with a message when ../shared is absent), each against its
# thresholds; JSON, HTML and JUnit reports in reports/.
eval: setup
	$(CLINIQ) eval run evals/suites/rls.yaml --out reports/rls
	$(CLINIQ) eval run evals/suites/medquad_rls.yaml --out reports/medquad_rls
	$(CLINIQ) eval run evals/suites/medquad_general.yaml --out reports/medquad_general

# The general suite's development twin (disjoint conditions): tune against this one, not CI's.
eval-dev: setup
	$(CLINIQ) eval run evals/suites/medquad_dev.yaml --out reports/medquad_dev

index: setup
	$(CLINIQ) ingest corpus/

SEED ?= What is the management approach for RESLEG (Rapid Eye Movement Sleep Leg) syndrome?

run: index
	$(CLINIQ) ask "$(SEED)"
	$(CLINIQ) chat

# The chat UI on http://127.0.0.1:8501 (docs/ui.md): loopback only, no usage statistics.
ui: index
	STREAMLIT_BROWSER_GATHER_USAGE_STATS=false $(VENV)/bin/streamlit run ui/app.py

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
