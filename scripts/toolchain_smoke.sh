#!/usr/bin/env bash
# scripts/toolchain_smoke.sh - end-to-end check of the toolchain from
# scripts/toolchain.sh: in a throw-away directory, create a Python Pulumi
# project that uses the repo's virtualenv, log in to a file:// backend, and run
# `pulumi up` twice on a program with one random.RandomPassword and one
# kubernetes ConfigMap rendered to YAML (Provider(render_yaml_to_directory=...)).
# Passes if the manifest is written, the second `up` has no changes and no `up` printed a
# "using pulumi-resource-... from $PATH" warning (plugins come from a plugin directory).
#
# Usage: bash scripts/toolchain_smoke.sh
# Env:   DATAPIPE_VENV            virtualenv with requirements.txt installed (default: <repo>/.venv)
#        DATAPIPE_TOOLCHAIN_CACHE passed through to scripts/toolchain.sh
#        KEEP_SMOKE_DIR=1         keep the temp directory for inspection
# Runs fully offline: PULUMI_HOME points into the temp dir (no downloads), where the toolchain's
# `pulumi` wrapper links the plugins registered in its cache.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV="${DATAPIPE_VENV:-$REPO_DIR/.venv}"

say() { printf '[smoke] %s\n' "$*"; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; exit 1; }

[[ -x "$VENV/bin/python" ]] || fail "no virtualenv at $VENV (create it and pip install -r requirements.txt)"

ENV_FILE="$(bash "$SCRIPT_DIR/toolchain.sh" --print-env-file)"
# shellcheck disable=SC1090
source "$ENV_FILE"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/datapipe-toolchain-smoke.XXXXXX")"
cleanup() {
  if [[ "${KEEP_SMOKE_DIR:-}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

export PULUMI_HOME="$TMP/pulumi-home"
export PULUMI_CONFIG_PASSPHRASE=x
export PULUMI_BACKEND_URL="file://$TMP/state"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$TMP/state" "$TMP/project" "$PULUMI_HOME"
cd "$TMP/project"

cat >Pulumi.yaml <<EOF
name: toolchain-smoke
description: smoke test of scripts/toolchain.sh
runtime:
  name: python
  options:
    toolchain: pip
    virtualenv: $VENV
EOF

cat >__main__.py <<'EOF'
import os

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

password = random.RandomPassword("password", length=24, special=False)

render = k8s.Provider(
    "render",
    render_yaml_to_directory=os.path.join(os.getcwd(), "rendered"),
)
config_map = k8s.core.v1.ConfigMap(
    "smoke",
    metadata={"name": "toolchain-smoke", "namespace": "default"},
    data={"greeting": "hello"},
    opts=pulumi.ResourceOptions(provider=render),
)

pulumi.export("password_length", password.length)
pulumi.export("config_map", config_map.metadata["name"])
EOF

say "pulumi $(pulumi version) at $(command -v pulumi)"
pulumi login "file://$TMP/state"
pulumi stack init t --non-interactive

say "first pulumi up"
pulumi up --yes --non-interactive --skip-preview 2>&1 | tee "$TMP/up1.log"

manifest="$(find rendered -name '*.yaml' | head -n 1)"
[[ -n "$manifest" ]] || fail "no manifest written under $TMP/project/rendered"
grep -q 'greeting: hello' "$manifest" || fail "manifest $manifest lacks the ConfigMap data"
say "manifest written: $manifest"
sed 's/^/    /' "$manifest"

[[ "$(pulumi stack output password_length)" == 24 ]] || fail "unexpected stack output password_length"

say "second pulumi up (must have no changes)"
pulumi up --yes --non-interactive --expect-no-changes 2>&1 | tee "$TMP/up2.log"

warnings="$(cat "$TMP/up1.log" "$TMP/up2.log" | grep -c 'from \$PATH' || true)"
[[ "$warnings" == 0 ]] || fail "$warnings 'from \$PATH' plugin warnings in the pulumi up output"

say "plugins used:"
pulumi plugin ls 2>/dev/null || true
say "PASS"
