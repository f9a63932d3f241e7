# Two commands do all the set-up (see README):
#   make demo   creates .venv, installs, pulls the demo corpus, builds its index, answers the seed question
#               (with the bundled LLM; GENERATOR=extractive answers without a model)
#   make test   creates .venv if needed, installs, runs the test suite
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
QUESTION ?= What is the treatment for oligoprogressive colorectal cancer?
GENERATOR ?= llama

.PHONY: demo test install lint bench eval-retrieval clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first: pip then resolves it to the local CPU wheel, and nothing later pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/medcite corpus pull demo
	$(BIN)/medcite index build --corpus demo --out indexes/demo
	$(BIN)/medcite ask "$(QUESTION)" --index indexes/demo --generator $(GENERATOR)

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline eval tests scripts
	$(BIN)/ruff format --check pipeline eval tests scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m eval.bench_index

eval-retrieval: $(STAMP)
	$(BIN)/python -m eval.retrieval

clean:
	rm -rf $(VENV) data/corpora indexes/*/ .pytest_cache
