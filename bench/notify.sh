#!/usr/bin/env bash
# The notify-pipeline benchmark of ../shared/peers (front door → durable queue → ntfy-like
# sink), run against rez exactly as it was run against Node-RED and n8n.
#   bench/notify.sh [--quick] [extra run.sh options]
# The disk's own sync latency is probed beside it (bench/disk-probe.py) and reported at
# the end: every accepted message waits for one sync, so a stalling disk shows up in the
# latency figures and this says whether it did. So is the host's CPU (bench/cpu-probe.py:
# steal, idle, and how fast a fixed piece of work runs), which moves the throughput figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${PEERS_DIR:-$root/../shared/peers}"
cargo build --release -p rez-cli --bins --manifest-path "$root/Cargo.toml"
key="bench-admin-key-0123456789abcdef"
export PEERS_RESULTS="${PEERS_RESULTS:-/tmp/rez-peers-results}"
# On the filesystem serve-fresh.sh puts the data directory on.
python3 "$root/bench/disk-probe.py" "${TMPDIR:-/tmp}" &
probe=$!
python3 "$root/bench/cpu-probe.py" &
cpu_probe=$!
status=0
"$peers/run.sh" rez \
  --header "Authorization: Bearer $key" \
  --env "REZ_API_KEY=$key" \
  --env "REZ_OUTBOUND_ALLOW_LOOPBACK=true" \
  --env "REZ_LOG=warn" \
  "$@" -- "$root/bench/serve-fresh.sh" || status=$?
kill -TERM "$probe" "$cpu_probe" 2>/dev/null || true
wait "$probe" || true
wait "$cpu_probe" || true
exit "$status"
