#!/usr/bin/env bash
# Agent benchmarks (crates/cli/examples/bench_agent.rs), each REPS times (default 3):
#   steps RUNS TURNS      rez's own wall time per step (p50/p99) and CPU per step, one run
#                         at a time, in process, against a model answering at once
#   concurrent RUNS TURNS RUNS runs at once through `rez serve` and the fake model over HTTP
#   bench/agent.sh [REPS=3]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-3}"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -p rez-cli --example bench_agent
ex="$target/release/examples/bench_agent"
for i in $(seq 1 "$reps"); do
  echo "== repetition $i"
  REZ_LOG=error "$ex" steps 300 5
  REZ_LOG=error "$ex" concurrent 100 5
done
