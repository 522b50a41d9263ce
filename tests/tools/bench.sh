#!/usr/bin/env bash
# `make bench`: every benchmark under tests/bench/, each printing its own table; `bench.sh NAME...` runs bench_NAME.py only.
# Every benchmark runs; the exit status is non-zero when any of them missed a target (or failed).
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob
if [ $# -gt 0 ]; then
  benches=()
  for name in "$@"; do benches+=("tests/bench/bench_${name}.py"); done
else
  benches=(tests/bench/bench_*.py)
fi
if [ ${#benches[@]} -eq 0 ]; then
  echo "bench: no benchmarks yet"
  exit 0
fi
export BENCH_FAULTS_RUNS="${BENCH_FAULTS_RUNS:-5}"  # bench_faults.py: diagnose runs per fault set (make bench BENCH_FAULTS_RUNS=N)
status=0
for bench in "${benches[@]}"; do
  echo "== $bench"
  PYTHONPATH=tests/lab .venv/bin/python "$bench" || status=1
done
exit "$status"
