#!/usr/bin/env bash
# Installs the AWS tooling the tests and the deployment docs use into a private Python
# venv at .tools/aws-venv (git-ignored), if it is missing or has other versions:
#   moto[server]  the AWS emulator the rez-aws tests run against (moto_server)
#   cfn-lint      validates deploy/template.yaml (includes the SAM translator)
#   cargo-lambda  builds the Lambda zip (`cargo lambda build --release --arm64`)
# Idempotent and quiet: a second run only compares a stamp file. Needs python3 (with the
# venv module) and PyPI. Usage: scripts/aws-tools.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=$PWD/.tools/aws-venv
REQUIREMENTS=(
    "moto[server]==5.2.5"
    "cfn-lint==1.58.0"
    "cargo-lambda==1.9.2"
)
STAMP=$VENV/.rez-requirements
want=$(printf '%s\n' "${REQUIREMENTS[@]}")

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
    [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ] && [ -x "$VENV/bin/cargo-lambda" ]; then
    exit 0
fi

echo "aws-tools: installing ${REQUIREMENTS[*]} into $VENV" >&2
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "aws-tools: python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS[@]}" >&2
for bin in moto_server cfn-lint cargo-lambda; do
    [ -x "$VENV/bin/$bin" ] || { echo "aws-tools: $bin missing after install" >&2; exit 1; }
done
printf '%s\n' "$want" >"$STAMP"
