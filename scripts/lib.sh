# scripts/lib.sh - sourced (not run) by scripts/services.sh and scripts/toolchain.sh, which
# build pinned tools once into a cache outside the repo the same way. The sourcing script
# sets LOG_TAG (the log prefix), CACHE and ENV_FILE.

# parse_mode SCRIPT [ARG]: MODE=all, or print-env-file for --print-env-file; --help prints
# SCRIPT's header comment (line 2 up to `set -euo pipefail`).
parse_mode() {
  local script="$1"
  MODE=all
  case "${2:-}" in
    "") ;;
    --print-env-file) MODE=print-env-file ;;
    -h|--help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p;}' "$script"; exit 0 ;;
    *) echo "$(basename "$script"): unknown argument: $2 (try --help)" >&2; exit 2 ;;
  esac
}

# print_env_file SCRIPT: the last step, ENV_FILE's path on stdout (and, unless MODE is
# print-env-file, how to source it on stderr).
print_env_file() {
  if [[ "$MODE" != print-env-file ]]; then
    log "env file: $ENV_FILE  (use: source \"\$(bash scripts/$(basename "$1") --print-env-file)\")"
  fi
  echo "$ENV_FILE"
}

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

# lock_cache: create CACHE and hold its lock until the script exits.
lock_cache() {
  mkdir -p "$CACHE"
  # Serialize concurrent runs (e.g. two shells or CI + a developer) on the same cache.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.lock"
    flock 9
  fi
}

# pins_used SCRIPT TEXT: NAME=value for each variable of SCRIPT's pinned-versions block that
# TEXT (a build function's body) names, for the fingerprint of that build.
pins_used() {
  local v
  for v in $(sed -n '/^# ---- pinned versions/,/^# ------/s/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' "$1"); do
    if [[ "$2" == *"\$$v"* ]]; then printf '%s=%s\n' "$v" "${!v}"; fi
  done
}

# timed_build DIR WORKDIR FUNC WHAT: empty DIR, run `FUNC DIR` (cwd WORKDIR, created inside
# DIR) logging to DIR/build.log and record its seconds in DIR/.build-seconds. On failure
# say "WHAT failed", show the log tail and exit.
timed_build() {
  local dir="$1" workdir="$2" fn="$3" what="$4" start rc
  rm -rf "$dir"
  mkdir -p "$workdir"
  start=$(date +%s)
  set +e
  ( set -euo pipefail; cd "$workdir"; "$fn" "$dir" ) >"$dir/build.log" 2>&1
  rc=$?
  set -e
  if [[ $rc -ne 0 ]]; then
    printf '[%s] ERROR: %s failed (exit %s). Last lines of %s:\n' "$LOG_TAG" "$what" "$rc" "$dir/build.log" >&2
    tail -n 40 "$dir/build.log" | sed 's/^/    /' >&2
    exit 1
  fi
  echo "$(( $(date +%s) - start ))" >"$dir/.build-seconds"
}
