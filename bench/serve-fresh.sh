#!/usr/bin/env bash
# Start `rez serve` on a fresh, temporary data directory (each benchmark repetition
# starts from empty state, as the peers harness expects). Extra env comes from the caller.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export REZ_DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rez-bench.XXXXXX")"
exec "${CARGO_TARGET_DIR:-$root/target}/release/rez" serve
