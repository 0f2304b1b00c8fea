#!/usr/bin/env bash
# The notify-pipeline benchmark of ../shared/peers (front door → durable queue → ntfy-like
# sink), run against rez exactly as it was run against Node-RED and n8n.
#   bench/notify.sh [--quick] [extra run.sh options]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${PEERS_DIR:-$root/../shared/peers}"
cargo build --release -p rez-cli --bins --manifest-path "$root/Cargo.toml"
key="bench-admin-key-0123456789abcdef"
export PEERS_RESULTS="${PEERS_RESULTS:-/tmp/rez-peers-results}"
exec "$peers/run.sh" rez \
  --header "Authorization: Bearer $key" \
  --env "REZ_API_KEY=$key" \
  --env "REZ_OUTBOUND_ALLOW_LOOPBACK=true" \
  --env "REZ_LOG=warn" \
  "$@" -- "$root/bench/serve-fresh.sh"
