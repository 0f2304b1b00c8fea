#!/usr/bin/env bash
# Each Lambda function's init (process start to its first poll of the Runtime API) and first
# event, for a built bootstrap, against the template's resources on moto
# (crates/lambda/examples/lambda_init.rs). BENCHMARKS.md "Lambda" quotes it.
#
# Usage: scripts/lambda-init.sh [--arm64] [RUNS]
#   default   builds the x86_64 release binary, strips it, and measures it.
#   --arm64   measures target/lambda/rez-lambda/bootstrap as scripts/build-lambda.sh --arm64
#             left it. On an x86_64 host it runs under qemu-user (Debian's qemu-user and
#             libc6-arm64-cross, installed when missing): that shows every function starts
#             and answers on the architecture the template deploys, but the times are
#             emulated, several times what Graviton takes, and are not init times.
set -euo pipefail
cd "$(dirname "$0")/.."

arm64=false
runs=9
for arg in "$@"; do
    case "$arg" in
        --arm64) arm64=true ;;
        [0-9]*) runs=$arg ;;
        *) echo "usage: scripts/lambda-init.sh [--arm64] [RUNS]" >&2; exit 2 ;;
    esac
done

scripts/aws-tools.sh
export REZ_MOTO_SERVER=$PWD/.tools/aws-venv/bin/moto_server
cargo build --release -p rez-lambda --example lambda_init
harness=target/release/examples/lambda_init

if ! $arm64; then
    cargo build --release -p rez-lambda --bin rez-lambda
    strip -o target/release/rez-lambda.stripped target/release/rez-lambda
    exec "$harness" target/release/rez-lambda.stripped "$runs"
fi

bootstrap=$PWD/target/lambda/rez-lambda/bootstrap
if ! [ -x "$bootstrap" ]; then
    echo "lambda-init: no arm64 bootstrap at $bootstrap; run scripts/build-lambda.sh --arm64 first" >&2
    exit 1
fi
if [ "$(uname -m)" = aarch64 ]; then
    exec "$harness" "$bootstrap" "$runs"
fi
if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user libc6-arm64-cross
fi
# The harness starts the function with an empty environment: the wrapper names qemu and
# the arm64 C library by absolute path.
wrapper=$(mktemp -t rez-bootstrap-arm64.XXXXXX)
trap 'rm -f "$wrapper"' EXIT
printf '#!/bin/sh\nexec %s -L /usr/aarch64-linux-gnu %s "$@"\n' "$(command -v qemu-aarch64)" "$bootstrap" >"$wrapper"
chmod +x "$wrapper"
echo "lambda-init: $bootstrap under $(qemu-aarch64 --version | head -1) (emulated: not init times)"
"$harness" "$wrapper" "$runs"
