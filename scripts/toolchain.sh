#!/usr/bin/env bash
# scripts/toolchain.sh - the Pulumi CLI (>= v3.274.1), its Python language host and the
# kubernetes/random resource plugins: an official `pulumi` on PATH if there is one, else built from
# the Go module proxy once into ${DATAPIPE_TOOLCHAIN_CACHE:-$HOME/.cache/datapipe-toolchain}.
#
#   bash scripts/toolchain.sh                                # ensure it all; progress on stderr
#   source "$(bash scripts/toolchain.sh --print-env-file)"   # same; stdout is only the env file
#   bash scripts/toolchain.sh --help                         # what is used, built and exported
#
# The work is done by scripts/provision/toolchain.py, standard library only: it runs with the system
# python3 (/usr/bin/python3 when there is one: no virtualenv or version-manager shim in between).
python=/usr/bin/python3; [[ -x "$python" ]] || python=python3
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}" \
  exec "$python" -m provision.toolchain "$@"
