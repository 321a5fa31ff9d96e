# The front door. Every target installs what it needs first (into .venv) unless VENV is set to
# an existing environment, e.g. `make test VENV=/opt/myenv`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# On machines that keep a local torch CPU wheel (like CI), pip finds it through PIP_FIND_LINKS.
PIP_FLAGS ?= -q --disable-pip-version-check

RECIPE ?= recipes/qwen2.5-vl-3b/qlora.yaml
DATA_RECIPE ?= recipes/data/crohme.yaml
MODEL ?= artifacts/tiny-qwen2.5-vl
SETS ?= crohme2014,crohme2016,crohme2019
BACKEND ?= auto
OUT ?= outputs
DATA_DIR ?= outputs/data/crohme
ARGS ?=
# CPU runs use one torch thread per process: torch's default threads thrash on a shared 2-core
# machine (make demo 902 s -> 77 s, make test 315 s -> 114 s). THREADS=N to change it.
THREADS ?= 1
test demo tiny-model: export OMP_NUM_THREADS = $(THREADS)
test demo tiny-model: export MKL_NUM_THREADS = $(THREADS)

.PHONY: help install install-gpu test quality demo tiny-model data finetune eval eval-crohme \
        eval-hme100k mine-errors score export predict bench bench-data bench-train bench-eval clean \
        install-app app

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt requirements-deepspeed.txt
	@echo ">> creating the virtual environment in $(VENV) and installing the CPU requirements"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) -r requirements.txt -r requirements-dev.txt
	@# deepspeed ships as source; build no ops now (they JIT-compile on first use) and build it
	@# against the torch installed above rather than a fresh one from the index.
	DS_BUILD_OPS=0 $(PIP) install $(PIP_FLAGS) --no-build-isolation -r requirements-deepspeed.txt
	@touch $(STAMP)

# KaTeX (pinned in eval/katex_assets.py, fetched with npm, kept in vendor/): the HTML reports inline
# it so they typeset their formulas offline.
KATEX := vendor/katex/package.json
$(KATEX): eval/katex_assets.py | $(STAMP)
	$(PY) -m eval.katex_assets fetch
	@touch $(KATEX)

# The web demo's gradio (requirements-app.txt) lives in its own venv that sees $(VENV)'s packages
# through a .pth file: gradio declares pillow<13, and that must not change the stack the tests run on.
APP_VENV ?= $(VENV)-app
APP_PY := $(APP_VENV)/bin/python
APP_STAMP := $(APP_VENV)/.installed
SITE_PACKAGES := import sysconfig; print(sysconfig.get_paths()["purelib"])

$(APP_STAMP): $(STAMP) requirements-app.txt
	@test -x $(APP_PY) || $(PY) -m venv $(APP_VENV)
	$(PY) -c '$(SITE_PACKAGES)' > "$$($(APP_PY) -c '$(SITE_PACKAGES)')/hmer-base-venv.pth"
	$(APP_PY) -m pip install $(PIP_FLAGS) -r requirements-app.txt
	@touch $(APP_STAMP)

install: $(STAMP) $(KATEX)  ## Create .venv with the pinned CPU stack (no CUDA packages)

install-app: $(APP_STAMP)  ## The web demo's own venv (.venv-app: gradio on top of .venv)

install-gpu: $(STAMP)  ## Add vLLM, Unsloth and the GPU-only packages (on a CUDA machine)
	$(PIP) install $(PIP_FLAGS) -r requirements-gpu.txt

.PHONY: install-trackers
install-trackers: $(STAMP)  ## Add the optional report_to trackers (wandb, trackio)
	$(PIP) install $(PIP_FLAGS) -r requirements-trackers.txt

test: $(STAMP) $(KATEX)  ## Run the test suite
	$(PY) -m pytest -q $(ARGS)

quality: $(STAMP)  ## Lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

demo: $(STAMP)  ## End to end on the bundled CROHME sample: data -> fine-tune tiny model -> eval
	$(PY) -m scripts.demo $(ARGS)

tiny-model: $(STAMP)  ## Build the tiny offline Qwen2.5-VL used by tests and the demo
	$(PY) -m train.tiny_model --output-dir artifacts/tiny-qwen2.5-vl

data: $(STAMP)  ## Build a training/test dataset from a data recipe (DATA_RECIPE=...)
	$(PY) -m data_prep.build --config $(DATA_RECIPE) $(ARGS)

.PHONY: push-data
push-data: $(STAMP)  ## Upload a built dataset to the Hub with its card (DATA_DIR=..., REPO_ID=user/name)
	$(PY) -m data_prep.push --data-dir $(DATA_DIR) --repo-id $(REPO_ID) $(ARGS)

finetune: $(STAMP)  ## Fine-tune from a recipe (RECIPE=recipes/<model>/<method>.yaml)
	$(PY) -m train.launch --config $(RECIPE) $(ARGS)

eval: $(STAMP)  ## Evaluate MODEL on SETS (comma separated)
	$(PY) -m eval.evaluate --model $(MODEL) --sets $(SETS) --backend $(BACKEND) --output-root $(OUT)/eval $(ARGS)

eval-crohme: SETS = crohme2014,crohme2016,crohme2019
eval-crohme: eval  ## Evaluate MODEL on CROHME 2014/2016/2019

eval-hme100k: SETS = hme100k
eval-hme100k: eval  ## Evaluate MODEL on the HME100K test set

mine-errors: $(STAMP)  ## Error-driven learning: mine wrong predictions by k-fold cross-prediction (DATA_DIR=, RECIPE=)
	$(PY) -m eval.mine_errors --data-dir $(DATA_DIR) --train-recipe $(RECIPE) --output-dir $(OUT)/mining --backend $(BACKEND) $(ARGS)

score: $(STAMP)  ## Score predictions files: make score PRED=a.jsonl [PRED2=b.jsonl]
	$(PY) -m eval.score $(PRED) $(PRED2) $(ARGS)

export: $(STAMP)  ## Export an adapter: make export ADAPTER=... FORMAT=merged|bnb-4bit|w4a16
	$(PY) -m train.export --adapter $(ADAPTER) --format $(FORMAT) $(ARGS)

predict: $(STAMP)  ## LaTeX for images: make predict MODEL=... IMAGES="a.png b.png"
	$(PY) -m eval.predict --model $(MODEL) $(IMAGES) $(ARGS)

app: $(APP_STAMP)  ## Web demo: draw or upload a formula, read it (MODEL=..., default the tiny model)
	@if [ "$(MODEL)" = artifacts/tiny-qwen2.5-vl ] && [ ! -d $(MODEL) ]; then \
		$(PY) -m train.tiny_model --output-dir artifacts/tiny-qwen2.5-vl; fi
	$(APP_PY) -m eval.app --model $(MODEL) --backend $(BACKEND) $(ARGS)

bench: bench-data bench-train bench-eval  ## All benchmarks

bench-data: $(STAMP)  ## Data preparation throughput
	$(PY) -m benchmarks.bench_data $(ARGS)

bench-train: $(STAMP)  ## Training throughput and memory (real 3B architecture, random weights)
	$(PY) -m benchmarks.bench_train $(ARGS)

bench-eval: $(STAMP)  ## Evaluation throughput, HF vs vLLM
	$(PY) -m benchmarks.bench_eval $(ARGS)

clean:  ## Remove build outputs (keeps .venv)
	rm -rf artifacts outputs .pytest_cache
