#!/usr/bin/env bash
# GPU check of the fused Triton LIAF kernel (issue 17) in one go, for one GPU session:
#   1. the CUDA correctness tests (kernel vs the float64 reference in every dtype, dispatch, CUDA-graph
#      capture, torch.compile; plus the interpreter tests and the other CUDA tests of the neuron);
#   2. the CUDA benchmark rows: T = 20, 60 x batch 8, 32; liafnet (Triton), liafnet's torch path, the
#      ReLU floor, spikingjelly; eager and whole-step CUDA graph; peak memory.
# About 5 minutes on one H100/H200; each part has its own time limit (8 minutes in all).
#
#   PY=.venv/bin/python benchmarks/gpu_check.sh        (or: make gpu-check)
#
# Needs a CUDA build of torch (it brings Triton), pytest, and for its rows spikingjelly 2.0.0
# (pip install --no-deps spikingjelly==2.0.0; skipped with the reason if absent). Writes
# benchmarks/gpu_check.log, benchmarks/results_neurons_cuda_triton.{json,md}, and refreshes
# benchmarks/results.{json,md}; with $OUT set, copies them there too. Exit status: the tests'.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
LOG=benchmarks/gpu_check.log
TEST_LIMIT=${TEST_LIMIT:-240}
BENCH_LIMIT=${BENCH_LIMIT:-240}
{
  date -u +"%Y-%m-%dT%H:%M:%SZ gpu_check.sh"
  git rev-parse --short HEAD 2>/dev/null
  "$PY" -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__); print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
} 2>&1 | tee "$LOG"
if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "gpu_check.sh: no CUDA device visible to this torch; nothing measured" | tee -a "$LOG"; exit 2
fi

echo "== 1. correctness tests (limit ${TEST_LIMIT}s)" | tee -a "$LOG"
timeout "$TEST_LIMIT" "$PY" -m pytest -q -p no:cacheprovider -rs tests/test_triton_liaf.py \
  tests/test_neurons.py tests/test_models_vision.py -k "triton_liaf or cuda" 2>&1 | tee -a "$LOG"
tests=${PIPESTATUS[0]}

echo "== 2. benchmark rows (limit ${BENCH_LIMIT}s)" | tee -a "$LOG"
timeout "$BENCH_LIMIT" "$PY" benchmarks/bench_cuda_graph.py --out benchmarks/results_neurons_cuda_triton.json \
  ${BENCH_ARGS:-} 2>&1 | tee -a "$LOG"
bench=${PIPESTATUS[0]}
"$PY" benchmarks/collect.py 2>&1 | tee -a "$LOG"

echo "gpu_check.sh: tests exit ${tests}, benchmark exit ${bench} (124 = time limit)" | tee -a "$LOG"
if [ -n "${OUT:-}" ]; then
  cp "$LOG" benchmarks/results_neurons_cuda_triton.json benchmarks/results_neurons_cuda_triton.md \
    benchmarks/results.md benchmarks/results.json "$OUT"/ 2>/dev/null
fi
exit "$tests"
