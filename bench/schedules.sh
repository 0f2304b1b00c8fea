#!/usr/bin/env bash
# Schedule benchmarks: 100,000 active schedules (start-up time, memory, idle CPU of
# `rez serve`), then 1,000 schedules due in the same second (firing lateness).
#   bench/schedules.sh [N=100000]   (IDLE_SECS=60: idle window; SKIP_LATENESS=1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-100000}"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -p rez-cli --bins --example bench_schedules
bin="$target/release/rez"
ex="$target/release/examples/bench_schedules"
dir="$(mktemp -d /tmp/rez-sched-bench.XXXXXX)"
"$ex" populate "$dir" "$n"

port=18181
start=$(date +%s%N)
REZ_DATA_DIR="$dir" REZ_BIND="127.0.0.1:$port" REZ_LOG=warn "$bin" serve >/dev/null &
pid=$!
until curl -fs "http://127.0.0.1:$port/api/health" >/dev/null 2>&1; do sleep 0.005; done
ready=$(date +%s%N)
echo "start to first 2xx with $n schedules: $(( (ready - start) / 1000000 )) ms"
sleep 10
idle="${IDLE_SECS:-60}"
# Wake-ups: voluntary context switches summed over the process's threads.
switches() { cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt_switches/{s+=$2} END{print s}'; }
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
w0=$(switches)
sleep "$idle"
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
w1=$(switches)
hz=$(getconf CLK_TCK)
echo "idle RSS with $n schedules: $(( rss / 1024 )) MiB"
echo "idle CPU over $idle s: $(( (t1 - t0) * 1000 / hz )) ms ($(awk "BEGIN{printf \"%.3f\", ($t1-$t0)/$hz/$idle*100}") %)"
echo "idle wake-ups over $idle s: $(( w1 - w0 )) voluntary context switches"
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$dir"

[ "${SKIP_LATENESS:-}" = 1 ] || "$ex" lateness 1000
