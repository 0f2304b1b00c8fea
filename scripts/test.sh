#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need if it is missing.
# Usage: scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never

# The official MCP conformance suite against /mcp (installs Node 22 and the suite under
# .tools/ on first use; needs the npm registry).
scripts/conformance.sh

# Every Rust test (unit, property, port suite, black-box, crash). Debug builds compile
# fast; dependencies are optimised (Cargo.toml). There are no doctests.
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
