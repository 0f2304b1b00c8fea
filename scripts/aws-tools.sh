#!/usr/bin/env bash
# Installs the AWS tooling into a private Python venv at .tools/aws-venv (git-ignored), if it
# is missing or has other versions:
#   moto[server]  the AWS emulator the rez-aws tests run against (moto_server)
#   cfn-lint      validates deploy/template.yaml (includes the SAM translator)
# and, with --deploy only:
#   cargo-lambda  builds the Lambda zip (DEPLOY.md); it brings zig (~400 MB), which the
#                 tests do not need, so the test command does not install it.
# Idempotent and quiet: a second run only compares a stamp file. Needs python3 (with the
# venv module) and PyPI. Usage: scripts/aws-tools.sh [--deploy]
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=$PWD/.tools/aws-venv
REQUIREMENTS=(
    "moto[server]==5.2.5"
    "cfn-lint==1.58.0"
)
BINS=(moto_server cfn-lint)
if [ "${1:-}" = "--deploy" ]; then
    REQUIREMENTS+=("cargo-lambda==1.9.2")
    BINS+=(cargo-lambda)
elif [ -n "${1:-}" ]; then
    echo "usage: scripts/aws-tools.sh [--deploy]" >&2
    exit 2
fi
want=$(printf '%s\n' "${REQUIREMENTS[@]}")

have_all() {
    for bin in "${BINS[@]}"; do
        [ -x "$VENV/bin/$bin" ] || return 1
    done
}

# The stamp lists what was installed; a superset (installed with --deploy) also satisfies
# a plain run.
STAMP=$VENV/.rez-requirements
if [ -f "$STAMP" ] && have_all; then
    missing=0
    for req in "${REQUIREMENTS[@]}"; do
        grep -qxF -- "$req" "$STAMP" || missing=1
    done
    [ "$missing" = 0 ] && exit 0
fi

echo "aws-tools: installing ${REQUIREMENTS[*]} into $VENV" >&2
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "aws-tools: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
# --no-cache-dir: the wheels are not kept a second time in ~/.cache/pip.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-cache-dir \
    "${REQUIREMENTS[@]}" >&2
have_all || { echo "aws-tools: ${BINS[*]} not all present after install" >&2; exit 1; }
printf '%s\n' "$want" >"$STAMP"
