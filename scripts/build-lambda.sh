#!/usr/bin/env bash
# Builds the rez-lambda binary for AWS Lambda with cargo-lambda, where the template's
# CodeUri expects it (target/lambda/rez-lambda/bootstrap), and prints its size and the
# size of the zip SAM uploads. DEPLOY.md §1 describes it.
#
# Usage: scripts/build-lambda.sh [--arm64 | --x86-64] [--profile lambda|release]
#   --arm64 (default)  Graviton, what the template deploys (Architectures: [arm64]);
#                      needs the rustup target aarch64-unknown-linux-gnu (added here).
#   --x86-64           for a template edited to Architectures: [x86_64].
#   --profile          Cargo profile; `lambda` (default) is the small optimised one.
# cargo-lambda (with zig, the cross linker) comes from scripts/aws-tools.sh --deploy.
set -euo pipefail
cd "$(dirname "$0")/.."

arch=--arm64
target=aarch64-unknown-linux-gnu
profile=lambda
while [ $# -gt 0 ]; do
    case "$1" in
        --arm64) arch=--arm64; target=aarch64-unknown-linux-gnu ;;
        --x86-64|--x86_64) arch=--x86-64; target=x86_64-unknown-linux-gnu ;;
        --profile) profile=${2:?--profile needs a name}; shift ;;
        *) echo "usage: scripts/build-lambda.sh [--arm64 | --x86-64] [--profile NAME]" >&2; exit 2 ;;
    esac
    shift
done

scripts/aws-tools.sh --deploy
CARGO_LAMBDA=$PWD/.tools/aws-venv/bin/cargo-lambda
export PATH=$PWD/.tools/aws-venv/bin:$PATH

# cargo-lambda would add a missing target itself, silently; do it here so that a refusal
# (no access to the Rust distribution server) is reported as what it is.
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    echo "build-lambda: adding the rustup target $target" >&2
    if ! rustup target add "$target"; then
        echo "build-lambda: rustup could not add $target (it downloads from static.rust-lang.org)." >&2
        echo "build-lambda: build on a machine that can, on an arm64 Linux host natively, or with --x86-64" >&2
        echo "build-lambda: and Architectures: [x86_64] in deploy/template.yaml." >&2
        exit 1
    fi
fi

"$CARGO_LAMBDA" lambda build --profile "$profile" "$arch" -p rez-lambda --bin rez-lambda
out="${CARGO_TARGET_DIR:-target}/lambda/rez-lambda"
zip_file=$(mktemp -d)/bootstrap.zip
(cd "$out" && zip -q -9 "$zip_file" bootstrap)
echo "binary: $(stat -c %s "$out/bootstrap") bytes ($out/bootstrap)"
echo "zip:    $(stat -c %s "$zip_file") bytes (what SAM uploads from CodeUri $out/)"
rm -f "$zip_file"
