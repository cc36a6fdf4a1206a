# liafnet: two commands set everything up: `make train` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
SEEDS ?= 3
export PYTHONUNBUFFERED := 1

.PHONY: help install train test test-fast bench gpu-check tables tables-smoke table-efficiency table-gesture \
	table-cifar10_dvs table-mnist_dvs table-babi table-babi_two_tower babi-results data-synthetic \
	data-mnist_dvs data-cifar10_dvs \
	data-dvs_gesture data-babi clean

help:  ## list targets
	@grep -hE '^[a-zA-Z0-9_ -]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

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

data-synthetic: install  ## generate the embedded synthetic dataset (also done on first use)
	$(PY) -c "from liafnet.data.synthetic import ensure_dataset; print(ensure_dataset('data/synthetic_gesture'))"

data-mnist_dvs: install  ## download MNIST-DVS (IMSE-CNM zips) into data/mnist_dvs
	$(PY) -m liafnet.data.download mnist_dvs --root data/mnist_dvs

data-cifar10_dvs: install  ## download CIFAR10-DVS (figshare zips, MD5-checked) into data/cifar10_dvs
	$(PY) -m liafnet.data.download cifar10_dvs --root data/cifar10_dvs

data-dvs_gesture: install  ## how to get DVS128 Gesture (manual IBM Box download) into data/DvsGesture
	$(PY) -m liafnet.data.download dvs_gesture --root data/DvsGesture

bench: install  ## speed/memory benchmarks -> benchmarks/results.md and .json
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m pip install -q --no-deps spikingjelly==2.0.0
	$(PY) benchmarks/bench_neurons.py --device cpu --out benchmarks/results_neurons.json \
		--markdown benchmarks/results_neurons.md
	rm -f benchmarks/results_data.md
	$(PY) benchmarks/bench_data.py --out benchmarks/results_data.json --markdown benchmarks/results_data.md
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(PY) benchmarks/bench_cuda_graph.py --out benchmarks/results_neurons_cuda_triton.json; \
	else echo "bench: no CUDA device, the CUDA rows (bench_cuda_graph.py) are not measured"; fi
	$(PY) benchmarks/collect.py

gpu-check: install  ## on a GPU machine: CUDA tests of the Triton kernel + CUDA benchmark rows (~5 min)
	PY=$(PY) benchmarks/gpu_check.sh

clean:  ## remove generated outputs (keeps data/ and .venv/)
	rm -rf outputs multirun lightning_logs wandb

# ---- paper tables (docs/tables.md) -------------------------------------------------------------
# Extra overrides for table runs and their aggregation, e.g. make table-gesture TABLE_ARGS=trainer=gpu
TABLE_ARGS ?=
# STANDIN=1: run a table's full recipe on synthetic events of the real dataset's shapes and sizes
# (conf/standin/<table>.yaml), e.g. to time it without the data: make table-gesture STANDIN=1
STANDIN ?=
EVENT_TABLES := gesture cifar10_dvs mnist_dvs
# Smoke: every table's grid through its recipe on a tiny stand-in (conf/standin/<table>_tiny.yaml:
# 1 seed, 2 batches, T = 4 at 16x16), written to outputs/smoke.
SMOKE_COMMON := seed=0 logger=csv trainer=debug trainer.limit_train_batches=2 \
	trainer.enable_progress_bar=false paths.output_dir=outputs/smoke
SMOKE_BABI := $(SMOKE_COMMON) data.task=1,2 trainer.max_epochs=2
# Sweep, then aggregate whatever is on disk even if a job failed; the status is the sweep's.
# $(3): overrides for the aggregation only.
table_cmd = $(PY) train.py table=$(1) $(2); status=$$?; $(PY) -m liafnet.tables table=$(1) $(2) $(3) && exit $$status

table-efficiency: install  ## params, MACs/ACs, synops, energy of every model x event dataset (no data needed)
	$(PY) -m liafnet.profile --table outputs/tables/efficiency

table-gesture table-cifar10_dvs table-mnist_dvs: install  ## a paper table: its sweep, then tables + plots
	$(call table_cmd,$(@:table-%=%),$(TABLE_ARGS) $(if $(STANDIN),+standin=$(@:table-%=%)))

# `make tables`: `python -m liafnet.data.check --plan` checks each table's dataset for a complete original
# layout (docs/datasets.md), prints the plan (tables, runs, estimated time) and names the tables to run.
# The bAbI table (about 2 h) runs only when asked for: make tables BABI=1.
BABI ?=
tables: install  ## the efficiency table and every paper table whose data is complete (plan first); bAbI with BABI=1
	@tables=$$($(PY) -m liafnet.data.check --plan $(if $(filter 1 yes true,$(BABI)),--babi) \
	    $(foreach arg,$(BABI_TABLE_ARGS),--babi-arg $(arg)) $(TABLE_ARGS)) || exit $$?; \
	status=0; $(MAKE) --no-print-directory table-efficiency || status=1; \
	for t in $$tables; do $(MAKE) --no-print-directory table-$$t || status=1; done; exit $$status

tables-smoke: install  ## every table's grid through its recipe on tiny stand-in/bAbI data, end to end (minutes)
	@status=0; for t in $(EVENT_TABLES); do \
	  ( $(call table_cmd,$$t,$(SMOKE_COMMON) +standin=$${t}_tiny,++table_spec.smoke=true) ) || status=1; \
	done; \
	if [ -n "$(BABI_ROOT)" ]; then \
	  $(PY) -m liafnet.babi_results run --seeds 1 --extra-seeds 0 --results outputs/smoke/results/babi \
	    $(SMOKE_BABI) data.root=$(BABI_ROOT) +table_spec.smoke=true || status=1; \
	else echo "tables-smoke: bAbI skipped, no copy found (make data-babi)"; fi; \
	exit $$status

# ---- bAbI (docs/babi.md) ------------------------------------------------------------------------
# data.root for table-babi: a copy from `make data-babi`, else the shared read-only copy beside the repo.
BABI_ROOT ?= $(patsubst %/en,%,$(firstword $(wildcard data/babi/tasks_1-20_v1-2/en ../shared/data/babi/en)))
data-babi: install  ## download bAbI v1.2 into data/babi and verify it (or print where to put a copy)
	$(PY) -m liafnet.data.babi_download --root data/babi
# The bAbI tables' data overrides (also given to the plan of `make tables`).
BABI_TABLE_ARGS = seed='range(0,$(SEEDS))' $(if $(BABI_ROOT),data.root=$(BABI_ROOT))
# Settings (docs/babi.md): keras1 (summed question, conf/table/babi.yaml) and two_tower
# (conf/table/babi_two_tower.yaml). Finished runs are filed under results/babi/<setting>/cells and the
# tables rebuilt from there; a rerun (here or on another machine) skips the cells already filed.
BABI_SETTING ?= keras1 two_tower
EXTRA_SEEDS ?= 1
BABI_FLAGS = $(foreach s,$(BABI_SETTING),--setting $(s))
table-babi: install  ## bAbI: 20 tasks x liaf lif lstm gru x SEEDS seeds + extras x EXTRA_SEEDS, per BABI_SETTING; results/babi
	$(PY) -m liafnet.babi_results run $(BABI_FLAGS) --seeds $(SEEDS) --extra-seeds $(EXTRA_SEEDS) \
		$(if $(BABI_ROOT),data.root=$(BABI_ROOT)) $(TABLE_ARGS)
table-babi_two_tower: install  ## bAbI, the two_tower setting only (make table-babi BABI_SETTING=two_tower)
	$(MAKE) --no-print-directory table-babi BABI_SETTING=two_tower
babi-results: install  ## bAbI: file finished runs of outputs/ under results/babi, rebuild the tables from results/ alone
	$(PY) -m liafnet.babi_results collect $(BABI_FLAGS) $(TABLE_ARGS)
	$(PY) -m liafnet.babi_results table $(BABI_FLAGS) --seeds $(SEEDS)
