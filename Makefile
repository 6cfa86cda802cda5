# The two commands a fresh clone needs: `make demo` (the main job) and `make test`.
# Both create .venv and install everything on first use; torch is pinned first so pip
# takes the CPU wheel instead of pulling a multi-GB CUDA build.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: demo fine-tune test lint format tour bench docs-figures

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/arctic-like train examples/recipes/tiny-addition.yaml
	$(PY) examples/generate.py runs/tiny-addition/huggingface

fine-tune: $(STAMP)
	$(PY) examples/fine-tuning/make_pretrained.py
	$(VENV)/bin/arctic-like train examples/fine-tuning/recipe.yaml
	$(PY) examples/fine-tuning/check.py runs/fine-tuning/huggingface --min-accuracy 0.9

tour: $(STAMP)
	$(PY) examples/callbacks_tour.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/dispatch.py

# Rerun the demo and the benchmarks, record their output in docs/figures/ and rewrite the figures the docs
# quote (about 25 minutes on an idle 2-core machine, 4 of them compiling DeepSpeed's ops; run it on an idle one).
docs-figures: $(STAMP)
	$(PY) scripts/docs_figures.py --run all
