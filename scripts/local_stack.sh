#!/usr/bin/env bash
# Run a pulumi command against the embedded `local` stack: render mode, no cluster, no cloud.
# With DATAPIPE_STACK=cluster, against the `cluster` stack instead: both layers deployed to the two
# local API servers of scripts/clusters.sh (their kubeconfig; `up` refreshes first, so clusters
# started anew since the last `up` are filled again).
#
#   bash scripts/local_stack.sh up        # render the platform to rendered/<layer>/ (with the policy pack)
#   bash scripts/local_stack.sh preview   # show what up would do (with the policy pack)
#   bash scripts/local_stack.sh output    # the stack outputs; secrets show as [secret] unless --show-secrets
#   bash scripts/local_stack.sh destroy   # remove what up rendered, and the emptied rendered/ folders
#   bash scripts/local_stack.sh <any pulumi args>
#
# Extra arguments go to pulumi, e.g. `bash scripts/local_stack.sh output --show-secrets`.
# Does all set-up on a fresh machine: the virtualenv, the offline Pulumi toolchain
# (scripts/toolchain.sh), a file backend in .pulumi-local/ and the `local` stack.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$PWD/.pulumi-local}"
STACK="${DATAPIPE_STACK:-local}"
if [[ "$STACK" == local || "$STACK" == cluster ]]; then
  # Pulumi.local.yaml and Pulumi.cluster.yaml carry the salt of this public passphrase, which
  # protects nothing: these stacks hold only generated local passwords. A passphrase exported for other stacks
  # would not match that salt, so it is overridden here.
  export PULUMI_CONFIG_PASSPHRASE=datapipe-local
  unset PULUMI_CONFIG_PASSPHRASE_FILE
fi

refresh=()
if [[ "$STACK" == cluster ]]; then
  export KUBECONFIG="${DATAPIPE_CLUSTERS_DIR:-$PWD/.clusters}/kubeconfig"
  [[ -f "$KUBECONFIG" ]] || { echo "no $KUBECONFIG: start the clusters first (bash scripts/clusters.sh start, or make up-cluster)" >&2; exit 1; }
  refresh=(--refresh)
fi

bash scripts/setup_venv.sh >&2
# shellcheck disable=SC1090
source "$(bash scripts/toolchain.sh --print-env-file)"
mkdir -p "${PULUMI_BACKEND_URL#file://}"
pulumi stack select --create "$STACK" >/dev/null

# After a destroy the provider has deleted the rendered files but not their folders
# (<dir>/0-crd, <dir>/1-manifest, <dir>): remove the empty ones, and rendered/ itself if empty.
remove_empty_render_dirs() {
  local layer dir
  for layer in ingestion batch; do
    dir="$(pulumi config get --stack "$STACK" --path "datapipe:clusters.$layer.renderDirectory" 2>/dev/null)" || continue
    [[ -n "$dir" && -d "$dir" ]] || continue
    find "$dir" -depth -type d -empty -delete
    # A relative directory (rendered/ingestion): its now-empty parents inside the project too.
    if [[ "$dir" != /* && "$(dirname "$dir")" != . && -d "$(dirname "$dir")" ]]; then
      rmdir -p --ignore-fail-on-non-empty "$(dirname "$dir")"
    fi
  done
}

case "${1:-up}" in
  up) shift || true; exec pulumi up --yes --stack "$STACK" --policy-pack policy "${refresh[@]}" "$@" ;;
  preview) shift; exec pulumi preview --stack "$STACK" --policy-pack policy "$@" ;;
  output) shift; exec pulumi stack output --stack "$STACK" "$@" ;;
  destroy) shift; pulumi destroy --yes --stack "$STACK" "$@"; remove_empty_render_dirs ;;
  *) exec pulumi "$@" --stack "$STACK" ;;
esac
