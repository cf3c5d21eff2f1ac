#!/usr/bin/env bash
# scripts/toolchain.sh - provide the Pulumi CLI, the Python language host, the
# kubernetes/random resource plugins on a machine without access to Pulumi's
# download site or GitHub. Everything is built from the Go module
# proxy (the only Go source we can reach).
#
# Usage:
#   bash scripts/toolchain.sh                   # ensure all tools, print progress + env file path
#   source "$(bash scripts/toolchain.sh --print-env-file)"
#                                               # same, but stdout is only the env file path
#   bash scripts/toolchain.sh --help
#
# For each tool: if a binary of the pinned version is already on PATH it is
# used as is; otherwise it is built once into a cache outside the repo,
#   ${DATAPIPE_TOOLCHAIN_CACHE:-$HOME/.cache/datapipe-toolchain}/<name>-<version>/
# (binary + build.log; a finished build leaves a .complete marker holding a
# fingerprint of the pins and wrapper sources, so re-runs skip it unless those
# changed). The script then writes <cache>/env.sh, which prepends the tool
# directories to PATH and sets PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# and PULUMI_SKIP_UPDATE_CHECK=true (plugins are then taken from PATH). Progress
# goes to stderr. A first run from empty Go caches takes about 20 minutes on 2 cores.
#
# Needs (only when something must be built): go >= 1.26 (for pulumi v3.274.1)
# and access to the Go module proxy.
# End-to-end check: bash scripts/toolchain_smoke.sh
#
# Notes on what is built (see also the sources under scripts/toolchain/):
# - pulumi: github.com/pulumi/pulumi/pkg/v3/cmd/pulumi, CGO_ENABLED=0, version ldflag.
# - pulumi-language-python: the upstream host module is untagged and not served
#   by the proxy, so scripts/toolchain/pulumi-language-python is a small host
#   built on github.com/pulumi/pulumi/sdk/v3 (python/toolchain); the upstream
#   pulumi-language-python-exec script from the sdk module is installed beside it.
# - pulumi-resource-kubernetes: github.com/pulumi/pulumi-kubernetes/provider/v4
#   at the only pseudo-version the proxy serves (2026-01-15, which by its date and
#   its use in crd2pulumi's "update to pulumi-kubernetes v4.25.0" is the v4.25.0
#   release), reporting version 4.34.2 (what pulumi-kubernetes==4.34.2 requests):
#   the provider code is v4.25.0's, only the reported version is 4.34.2.
# - pulumi-resource-random: github.com/pulumi/pulumi-random is not served, so the
#   Terraform random provider is bridged with pulumi-terraform-bridge through a
#   local shim module; it reports version 4.21.4 (pulumi-random==4.21.4) and maps
#   the same resource tokens as the pulumi_random SDK (random:index/randomPassword:...).
set -euo pipefail

# ---- pinned versions (the one place to change them) -------------------------
PULUMI_VERSION=v3.274.1                  # pulumi CLI; also the sdk/v3 used by the language host
PULUMI_KUBERNETES_VERSION=4.34.2         # version the kubernetes plugin reports (== Python SDK)
PULUMI_KUBERNETES_MODULE=v4.0.0-20260115033456-f47bc2d6f199   # provider/v4 source (~ upstream v4.25.0)
PULUMI_RANDOM_VERSION=4.21.4             # version the random plugin reports (== Python SDK)
TF_PROVIDER_RANDOM_MODULE=v1.3.2-0.20260824155315-e1092b0cfc07 # terraform-provider-random source (3.9.x line)
# terraform-provider-random asks for plugin-framework v1.19.0 / plugin-go v0.31.0, but the
# terraform-plugin-sdk/v2 fork the bridge needs does not compile against plugin-go >= v0.31
# (tfprotov5.ProviderServer gained GenerateResourceConfig), so both are pinned down via replace:
TF_PLUGIN_FRAMEWORK_VERSION=v1.18.0
TF_PLUGIN_GO_VERSION=v0.30.0
TF_BRIDGE_VERSION=v3.120.0               # github.com/pulumi/pulumi-terraform-bridge/v3
TF_PLUGIN_SDK_FORK=v2.0.0-20250923233607-7f1981c8674a  # github.com/pulumi/terraform-plugin-sdk/v2 (bridge's replace)
CLIPBOARD_FORK=v0.0.0-20241001131231-d02d263e614e      # github.com/tgummerer/clipboard (pkg/v3's replace)
# -----------------------------------------------------------------------------

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC_DIR="$SCRIPT_DIR/toolchain"
CACHE="${DATAPIPE_TOOLCHAIN_CACHE:-$HOME/.cache/datapipe-toolchain}"
ENV_FILE="$CACHE/env.sh"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"
LOG_TAG=toolchain

parse_mode "${BASH_SOURCE[0]}" "$@"

# Go is only needed for builds; non-login shells often lack /usr/local/go/bin.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
require_go() {
  command -v go >/dev/null 2>&1 \
    || die "'go' is not on PATH but is needed to build $1. Install Go >= 1.26 and re-run."
}

lock_cache

export CGO_ENABLED=0

PATH_DIRS=()   # directories that env.sh prepends to PATH

add_path_dir() {
  local d="$1" x
  for x in "${PATH_DIRS[@]:-}"; do [[ "$x" == "$d" ]] && return 0; done
  PATH_DIRS+=("$d")
}

# fingerprint NAME FUNC: hash of what a build depends on (pinned versions, the
# build function, the wrapper sources); a cached build with another fingerprint
# is rebuilt, so editing scripts/toolchain/* or a pin takes effect on the next run.
fingerprint() {
  local body
  body="$(declare -f "$2")"
  {
    printf '%s\n' "$body"
    pins_used "${BASH_SOURCE[0]}" "$body"
    if [[ -d "$SRC_DIR/$1" ]]; then
      (cd "$SRC_DIR/$1" && find . -type f | LC_ALL=C sort | xargs cat)
    fi
  } | sha256sum | cut -d' ' -f1
}

# run_build NAME VERSION DIR FUNC: run FUNC (cwd DIR/src) logging to DIR/build.log,
# time it, and mark DIR complete. On failure name the tool and show the log tail.
run_build() {
  local name="$1" version="$2" dir="$3" fn="$4"
  require_go "$name"
  log "building $name $version -> $dir (log: $dir/build.log)"
  timed_build "$dir" "$dir/src" "$fn" "building $name $version"
  fingerprint "$name" "$fn" >"$dir/.complete"
  log "built $name $version in $(cat "$dir/.build-seconds")s"
}

# ensure NAME VERSION CHECK_FUNC BUILD_FUNC BINARIES...
#   CHECK_FUNC PATH_TO_BINARY -> success if that binary is the wanted version.
ensure() {
  local name="$1" version="$2" check="$3" build="$4"; shift 4
  local dir="$CACHE/$name-$version" found b ok

  # 1. A matching binary already on PATH (outside our cache) wins.
  found="$(command -v "$name" 2>/dev/null || true)"
  if [[ -n "$found" && "$found" != "$dir/"* ]] && "$check" "$found" >/dev/null 2>&1; then
    log "$name $version: using $found (already on PATH)"
    add_path_dir "$(dirname "$found")"
    return 0
  fi

  # 2. Cached build.
  ok=1
  [[ -f "$dir/.complete" && "$(cat "$dir/.complete")" == "$(fingerprint "$name" "$build")" ]] || ok=0
  for b in "$@"; do [[ -x "$dir/$b" ]] || ok=0; done
  if [[ $ok -eq 1 ]]; then
    log "$name $version: cached in $dir (built in $(cat "$dir/.build-seconds" 2>/dev/null || echo '?')s)"
  else
    run_build "$name" "$version" "$dir" "$build"
    for b in "$@"; do [[ -x "$dir/$b" ]] || die "building $name: $dir/$b was not produced (see $dir/build.log)"; done
  fi
  "$check" "$dir/$name" >/dev/null 2>&1 \
    || die "$name in $dir does not report version $version (see $dir/build.log)"
  add_path_dir "$dir"
}

# Print the module cache directory of a module required by the module in cwd.
mod_dir() { go list -m -f '{{.Dir}}' "$1"; }

# ---- pulumi CLI ----------------------------------------------------------------
check_pulumi() { [[ "$("$1" version 2>/dev/null)" == "$PULUMI_VERSION" ]]; }
build_pulumi() {
  local out="$1"
  cat >go.mod <<EOF
module datapipe.local/toolchain/pulumi

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
)

// Copied from github.com/pulumi/pulumi/pkg/v3's go.mod (replaces of dependencies do not apply).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard $CLIPBOARD_FORK
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' >tools.go
  go mod tidy
  go build -trimpath -o "$out/pulumi" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
}

# ---- Python language host ---------------------------------------------------------
check_language_python() {
  # Language hosts have no version flag. Accept our own build, or one that sits
  # next to a matching pulumi CLI (as in an official distribution); either way
  # the exec script must be beside it.
  local d; d="$(dirname "$1")"
  [[ -x "$d/pulumi-language-python-exec" ]] || return 1
  [[ "$d" == "$CACHE/pulumi-language-python-$PULUMI_VERSION" ]] && return 0
  [[ -x "$d/pulumi" ]] && check_pulumi "$d/pulumi"
}
build_language_python() {
  local out="$1"
  cp "$SRC_DIR/pulumi-language-python/main.go" .
  cat >go.mod <<EOF
module datapipe.local/toolchain/pulumi-language-python

go 1.26

require github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
EOF
  go mod tidy
  go build -trimpath -o "$out/pulumi-language-python" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" .
  install -m 0755 "$(mod_dir github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" \
    "$out/pulumi-language-python-exec"
}

# ---- kubernetes resource plugin ----------------------------------------------------
check_version_flag() { [[ "$(timeout 20 "$1" -version 2>/dev/null | tail -n 1)" == "$2" ]]; }
check_kubernetes() { check_version_flag "$1" "$PULUMI_KUBERNETES_VERSION"; }
build_kubernetes() {
  local out="$1" moddir
  cp "$SRC_DIR/pulumi-resource-kubernetes/main.go" "$SRC_DIR/pulumi-resource-kubernetes/gen.go" .
  cat >go.mod <<EOF
module datapipe.local/toolchain/pulumi-resource-kubernetes

go 1.26

require github.com/pulumi/pulumi-kubernetes/provider/v4 $PULUMI_KUBERNETES_MODULE
EOF
  # The embedded files must exist before `go mod tidy` (it parses go:embed).
  echo '{}' >schema-embed.json
  echo '{}' >terraform-mapping-embed.json
  go mod tidy
  moddir="$(mod_dir github.com/pulumi/pulumi-kubernetes/provider/v4)"
  go run gen.go "$moddir/cmd/pulumi-resource-kubernetes" "$PULUMI_KUBERNETES_VERSION"
  go build -trimpath -o "$out/pulumi-resource-kubernetes" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" .
}

# ---- random resource plugin ----------------------------------------------------------
check_random() { check_version_flag "$1" "$PULUMI_RANDOM_VERSION"; }
build_random() {
  local out="$1"
  cp -r "$SRC_DIR/pulumi-resource-random/." .
  cat >shim/go.mod <<EOF
module github.com/terraform-providers/terraform-provider-random/shim

go 1.26

require (
	github.com/hashicorp/terraform-plugin-framework $TF_PLUGIN_FRAMEWORK_VERSION
	github.com/terraform-providers/terraform-provider-random $TF_PROVIDER_RANDOM_MODULE
)
EOF
  cat >go.mod <<EOF
module datapipe.local/toolchain/pulumi-resource-random

go 1.26

require (
	github.com/pulumi/pulumi-terraform-bridge/v3 $TF_BRIDGE_VERSION
	github.com/terraform-providers/terraform-provider-random/shim v0.0.0
)

replace github.com/terraform-providers/terraform-provider-random/shim => ./shim

// Copied from pulumi-terraform-bridge's go.mod (replaces of dependencies do not apply).
replace github.com/hashicorp/terraform-plugin-sdk/v2 => github.com/pulumi/terraform-plugin-sdk/v2 $TF_PLUGIN_SDK_FORK

// Newest versions that still compile with that terraform-plugin-sdk/v2 fork (see top of toolchain.sh).
replace github.com/hashicorp/terraform-plugin-go => github.com/hashicorp/terraform-plugin-go $TF_PLUGIN_GO_VERSION

replace github.com/hashicorp/terraform-plugin-framework => github.com/hashicorp/terraform-plugin-framework $TF_PLUGIN_FRAMEWORK_VERSION
EOF
  echo '{}' >schema.json
  echo '{}' >bridge-metadata.json
  go mod tidy
  local ldflags="-s -w -X datapipe.local/toolchain/pulumi-resource-random/info.Version=$PULUMI_RANDOM_VERSION"
  go build -trimpath -o gen-schema -ldflags "$ldflags" ./gen
  ./gen-schema .
  go build -trimpath -o "$out/pulumi-resource-random" -ldflags "$ldflags" .
}

# ---- main ---------------------------------------------------------------------------------
log "cache: $CACHE"
ensure pulumi "$PULUMI_VERSION" check_pulumi build_pulumi pulumi
ensure pulumi-language-python "$PULUMI_VERSION" check_language_python build_language_python \
  pulumi-language-python pulumi-language-python-exec
ensure pulumi-resource-kubernetes "$PULUMI_KUBERNETES_VERSION" check_kubernetes build_kubernetes \
  pulumi-resource-kubernetes
ensure pulumi-resource-random "$PULUMI_RANDOM_VERSION" check_random build_random pulumi-resource-random

# Write env.sh (atomically, so a concurrent `source` never sees half a file).
tmp="$(mktemp "$CACHE/env.sh.XXXXXX")"
{
  echo "# Generated by scripts/toolchain.sh - source this file; do not edit."
  echo "for _datapipe_dir in \\"
  # Reverse order so that the first tool ends up first on PATH.
  for (( i=${#PATH_DIRS[@]}-1; i>=0; i-- )); do printf "  %q \\\\\n" "${PATH_DIRS[$i]}"; done
  echo "  ; do"
  echo '  case ":$PATH:" in *":$_datapipe_dir:"*) ;; *) PATH="$_datapipe_dir:$PATH" ;; esac'
  echo "done"
  echo "unset _datapipe_dir"
  echo "export PATH"
  echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
  echo "export PULUMI_SKIP_UPDATE_CHECK=true"
} >"$tmp"
mv -f "$tmp" "$ENV_FILE"

# Final verification through the env file, as callers will use it.
(
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  v="$(pulumi version)"
  [[ "$v" == "$PULUMI_VERSION" ]] || die "pulumi version printed '$v', expected $PULUMI_VERSION"
  command -v pulumi-language-python >/dev/null || die "pulumi-language-python not on PATH"
  check_kubernetes "$(command -v pulumi-resource-kubernetes)" || die "pulumi-resource-kubernetes on PATH is not $PULUMI_KUBERNETES_VERSION"
  check_random "$(command -v pulumi-resource-random)" || die "pulumi-resource-random on PATH is not $PULUMI_RANDOM_VERSION"
  log "verified: pulumi $v, pulumi-resource-kubernetes $PULUMI_KUBERNETES_VERSION, pulumi-resource-random $PULUMI_RANDOM_VERSION"
)

print_env_file "${BASH_SOURCE[0]}"
