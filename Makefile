# liafnet: two commands set everything up: `make train` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
SEEDS ?= 3
export PYTHONUNBUFFERED := 1

.PHONY: help install train test test-fast bench tables tables-smoke table-efficiency table-gesture \
	table-cifar10_dvs table-mnist_dvs table-babi data-synthetic data-mnist_dvs data-cifar10_dvs \
	data-dvs_gesture data-babi clean

help:  ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

install: $(STAMP)  ## create .venv and install liafnet (idempotent)

# torch first, pinned: it is the CPU build on disk here; a bare `torch` would pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

train: install  ## train LIAF-Net on the embedded synthetic dataset (offline, minutes)
	$(PY) train.py

test: install  ## run the whole test suite
	WANDB_MODE=disabled $(PY) -m pytest -q

test-fast: install  ## unit tests only (skips tests marked slow)
	WANDB_MODE=disabled $(PY) -m pytest -q -m "not slow"

clean:  ## remove generated outputs (keeps data/ and .venv/)
	rm -rf outputs multirun lightning_logs wandb
