#!/usr/bin/env bash
# Apply what `make up` rendered (rendered/<layer>/) to that layer's cluster with kubectl, in an
# order the API server accepts. A plain `kubectl apply -R -f rendered/<layer>` takes the files in
# name order, so the objects in apps_v1-* files reach a namespace that v1-namespace-* has not
# created yet (and custom resources could arrive before their CustomResourceDefinition).
#
#   bash scripts/apply_rendered.sh                # both layers
#   bash scripts/apply_rendered.sh ingestion      # one layer (ingestion or batch)
#   bash scripts/apply_rendered.sh --dry-run      # print the kubectl commands, run nothing
#
# Per layer, with `kubectl --context <the layer's context>`:
#   1. apply the CustomResourceDefinitions and the Namespaces,
#   2. wait until those CustomResourceDefinitions are established,
#   3. apply every other manifest.
# The kinds are read from the files (a top-level `kind:` line), not from their names.
#
# Contexts: DATAPIPE_INGESTION_CONTEXT (default kind-data-ingestion) and
# DATAPIPE_BATCH_CONTEXT (default kind-batch-analytics), the Kind clusters of kind/.
# RENDERED_DIR (default rendered) is the folder `make up` writes; KUBECTL (default kubectl).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RENDERED_DIR="${RENDERED_DIR:-rendered}"
KUBECTL="${KUBECTL:-kubectl}"
DRY_RUN=0
LAYERS=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"; exit 0 ;;
    ingestion|batch) LAYERS+=("$arg") ;;
    *) echo "apply_rendered.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
[[ ${#LAYERS[@]} -gt 0 ]] || LAYERS=(ingestion batch)

context_of() {
  case "$1" in
    ingestion) echo "${DATAPIPE_INGESTION_CONTEXT:-kind-data-ingestion}" ;;
    batch) echo "${DATAPIPE_BATCH_CONTEXT:-kind-batch-analytics}" ;;
  esac
}

run() {
  if [[ $DRY_RUN -eq 1 ]]; then
    printf '%q ' "$@" | sed 's/ $//'
    echo
  else
    "$@"
  fi
}

# -f FILE for each FILE argument.
file_args() { local f; for f in "$@"; do printf '%s\0%s\0' -f "$f"; done; }

applied_any=0
for layer in "${LAYERS[@]}"; do
  dir="$RENDERED_DIR/$layer"
  if [[ ! -d "$dir" ]]; then
    echo "apply_rendered.sh: $dir does not exist (run \`make up\` first); skipping $layer" >&2
    continue
  fi
  context="$(context_of "$layer")"
  crds=() namespaces=() rest=()
  while IFS= read -r -d '' file; do
    if grep -qx 'kind: CustomResourceDefinition' "$file"; then
      crds+=("$file")
    elif grep -qx 'kind: Namespace' "$file"; then
      namespaces+=("$file")
    else
      rest+=("$file")
    fi
  done < <(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0 | LC_ALL=C sort -z)
  if [[ $(( ${#crds[@]} + ${#namespaces[@]} + ${#rest[@]} )) -eq 0 ]]; then
    echo "apply_rendered.sh: $dir holds no manifests (run \`make up\` first); skipping $layer" >&2
    continue
  fi
  applied_any=1
  echo "# $layer -> context $context: ${#crds[@]} CustomResourceDefinitions, ${#namespaces[@]} Namespaces, ${#rest[@]} other manifests" >&2
  first=("${crds[@]}" "${namespaces[@]}")
  if [[ ${#first[@]} -gt 0 ]]; then
    mapfile -d '' args < <(file_args "${first[@]}")
    run "$KUBECTL" --context "$context" apply "${args[@]}"
  fi
  if [[ ${#crds[@]} -gt 0 ]]; then
    mapfile -d '' args < <(file_args "${crds[@]}")
    run "$KUBECTL" --context "$context" wait --for condition=established --timeout=120s "${args[@]}"
  fi
  if [[ ${#rest[@]} -gt 0 ]]; then
    mapfile -d '' args < <(file_args "${rest[@]}")
    run "$KUBECTL" --context "$context" apply "${args[@]}"
  fi
done
[[ $applied_any -eq 1 ]] || { echo "apply_rendered.sh: nothing to apply under $RENDERED_DIR/" >&2; exit 1; }
