# Two commands do all the set-up (see README):
#   make demo   creates .venv, installs, pulls the demo corpus, builds its index, answers the seed question
#               (with the bundled LLM; GENERATOR=extractive answers without a model); scripts/demo.sh
#   make test   creates .venv if needed, installs, runs the test suite
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
QUESTION ?= What is the treatment for oligoprogressive colorectal cancer?
GENERATOR ?= llama
# Each step of demo and install is timed (scripts/timed.sh); `make demo` ends with the table.
TIMES   ?= .make-times.tsv
TIMED   := MEDCITE_TIMES=$(TIMES) scripts/timed.sh

# llama-cpp-python builds from source. A -march=native build uses AMX tiles on CPUs that have them, and on
# this workplace's Sapphire Rapids machines that build crashes (SIGSEGV) on any multi-token prompt. So it is
# built once with explicit instruction sets, AMX off, into a per-machine wheel cache.
LLAMA_VERSION := 0.3.36
LLAMA_WHEELS  ?= $(HOME)/.cache/medcite/wheels
LLAMA_AVX512  := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo "-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON")
# Only the libraries medcite loads are compiled: libllama and ggml. The multimodal libmtmd is loaded only by
# llama-cpp-python's vision chat handlers (LLAVA_BUILD=OFF); llama.cpp's "common" library is never loaded, but
# llama-cpp-python's CMakeLists forces it on, so scripts/build_llama_wheel.sh turns it off in the checked sdist.
LLAMA_SDIST_SHA256 := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMA_CMAKE   := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON $(LLAMA_AVX512) \
                 -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF

.PHONY: demo test install lint bench eval-retrieval clean

$(BIN)/python:
	$(TIMED) "create .venv" $(PY) -m venv $(VENV)
	$(TIMED) "upgrade pip" $(BIN)/pip install -q --upgrade pip

# torch first: pip then resolves it to the local CPU wheel, and nothing later pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(TIMED) "install torch (CPU)" $(BIN)/pip install -q torch==2.13.0
	@ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python $(LLAMA_VERSION) once (1-4 minutes on 2 cores)"; \
	  $(TIMED) "build llama-cpp-python wheel" env CMAKE_ARGS="$(LLAMA_CMAKE)" \
	    scripts/build_llama_wheel.sh $(LLAMA_VERSION) $(LLAMA_SDIST_SHA256) $(LLAMA_WHEELS) $(BIN)/pip; }
	$(TIMED) "install medcite and deps" $(BIN)/pip install -q --find-links $(LLAMA_WHEELS) -e '.[dev,bench,ray]'
	touch $(STAMP)

install: $(STAMP)

# scripts/demo.sh: the same steps, but llama-cpp-python compiles in the background while the rest is installed and
# the index is built, and only what the demo runs is installed (no dev, bench or ray extras).
demo:
	@env PY="$(PY)" VENV="$(VENV)" BIN="$(BIN)" STAMP="$(STAMP)" TIMES="$(TIMES)" QUESTION="$(QUESTION)" \
	  GENERATOR="$(GENERATOR)" LLAMA_VERSION="$(LLAMA_VERSION)" LLAMA_SDIST_SHA256="$(LLAMA_SDIST_SHA256)" \
	  LLAMA_WHEELS="$(LLAMA_WHEELS)" LLAMA_CMAKE="$(LLAMA_CMAKE)" scripts/demo.sh

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline eval tests scripts
	$(BIN)/ruff format --check pipeline eval tests scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m eval.bench_index

eval-retrieval: $(STAMP)
	$(BIN)/python -m eval.retrieval

clean:
	rm -rf $(VENV) data/corpora indexes/*/ .pytest_cache
