#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need if it is missing.
# Usage: scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never

# AWS tooling (moto, cfn-lint) in .tools/aws-venv.
scripts/aws-tools.sh
AWS_BIN=$PWD/.tools/aws-venv/bin

# The CloudFormation/SAM template must lint clean (errors and warnings).
"$AWS_BIN/cfn-lint" deploy/template.yaml
echo "cfn-lint: deploy/template.yaml ok"

# One moto server for every AWS test process (each test uses its own resource prefix),
# on a free loopback port; stopped when this script exits.
MOTO_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_LOG=$(mktemp -t rez-moto.XXXXXX.log)
"$AWS_BIN/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
stop_moto() {
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    rm -f "$MOTO_LOG"
}
trap stop_moto EXIT
for _ in $(seq 1 100); do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
        echo "moto_server exited during start-up:" >&2
        cat "$MOTO_LOG" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
    echo "moto_server did not listen on 127.0.0.1:$MOTO_PORT within 10 s:" >&2
    cat "$MOTO_LOG" >&2
    exit 1
fi
export REZ_TEST_AWS_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export REZ_MOTO_SERVER=$AWS_BIN/moto_server
echo "moto: $REZ_TEST_AWS_ENDPOINT"

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
