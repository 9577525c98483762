# EdgeTwin: `make run` (set up + default scenario) and `make test` (set up + lint + types + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# The CPU wheel of torch; unpinned, pip would resolve a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install run test test-all lint typecheck bench compare-rl install-rt clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_PIN)"
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' "$(TORCH_PIN)"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/edgetwin compare scenarios/nr_cell.yaml --policies prb=pf,prb=rr,prb=maxrate --seeds 3 --out results/nr_cell

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' package-dir mapping, so it checks a tree of symlinks
# that spells the installed layout (edgetwin/<folder>).
typecheck: install
	rm -rf .typecheck && mkdir -p .typecheck/edgetwin
	for d in sim agents scenarios envs kernels; do ln -s ../../$$d .typecheck/edgetwin/$$d; done
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p edgetwin

test: install lint typecheck
	$(BIN)/pytest

test-all: install
	$(BIN)/pytest -m "not gpu and not benchmark"

# B0/A1/A2/Full: the shipped MAPPO checkpoint against PF + equal power on 10 matched seeds.
compare-rl: install
	$(PY) examples/prb_power_comparison.py

bench: install
	$(PY) -m pip install -q --disable-pip-version-check -e ".[bench]" "$(TORCH_PIN)"
	$(PY) benchmarks/radio_slots.py
	$(PY) benchmarks/env_steps.py

# Optional ray-traced channels: Dr.Jit needs LLVM 19 (LLVM 15/16 crash inside Dr.Jit).
install-rt: install
	apt-get install -y libllvm19 || (apt-get update && apt-get install -y libllvm19)

clean:
	rm -rf $(VENV) .typecheck build *.egg-info .pytest_cache .mypy_cache .ruff_cache
