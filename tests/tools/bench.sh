#!/usr/bin/env bash
# `make bench`: every benchmark under tests/bench/, each printing its own table.
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob
benches=(tests/bench/bench_*.py)
if [ ${#benches[@]} -eq 0 ]; then
  echo "bench: no benchmarks yet"
  exit 0
fi
export BENCH_FAULTS_RUNS="${BENCH_FAULTS_RUNS:-5}"  # bench_faults.py: diagnose runs per fault set (make bench BENCH_FAULTS_RUNS=N)
for bench in "${benches[@]}"; do
  echo "== $bench"
  PYTHONPATH=tests/lab .venv/bin/python "$bench"
done
