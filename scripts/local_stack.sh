#!/usr/bin/env bash
# Run a pulumi command against the embedded `local` stack: render mode, no cluster, no cloud.
#
#   bash scripts/local_stack.sh up        # render the platform to rendered/<layer>/
#   bash scripts/local_stack.sh preview   # show what up would do (with the policy pack)
#   bash scripts/local_stack.sh destroy   # remove what up rendered
#   bash scripts/local_stack.sh <any pulumi args>
#
# Does all set-up on a fresh machine: the virtualenv, the offline Pulumi toolchain
# (scripts/toolchain.sh), a file backend in .pulumi-local/ and the `local` stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-local}"
STACK="${DATAPIPE_STACK:-local}"
if [[ "$STACK" == local ]]; then
  # Pulumi.local.yaml carries the salt of this public passphrase, which protects nothing: the
  # local stack holds only generated local passwords. A passphrase exported for other stacks
  # would not match that salt, so it is overridden here.
  export PULUMI_CONFIG_PASSPHRASE=datapipe-local
  unset PULUMI_CONFIG_PASSPHRASE_FILE
fi

bash scripts/setup_venv.sh >&2
# shellcheck disable=SC1090
source "$(bash scripts/toolchain.sh --print-env-file)"
mkdir -p "${PULUMI_BACKEND_URL#file://}"
pulumi stack select --create "$STACK" >/dev/null

case "${1:-up}" in
  up) shift || true; exec pulumi up --yes --stack "$STACK" "$@" ;;
  preview) shift; exec pulumi preview --stack "$STACK" --policy-pack policy "$@" ;;
  destroy) shift; exec pulumi destroy --yes --stack "$STACK" "$@" ;;
  *) exec pulumi "$@" --stack "$STACK" ;;
esac
