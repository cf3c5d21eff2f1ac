#!/usr/bin/env bash
# scripts/controlplane.sh - kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok,
# built once from the Go module proxy into
# ${DATAPIPE_CONTROLPLANE_CACHE:-$HOME/.cache/datapipe-controlplane} (no Docker, no download site).
#
#   bash scripts/controlplane.sh                                 # ensure them; progress and times on stderr
#   source "$(bash scripts/controlplane.sh --print-env-file)"    # same; stdout is only the env file
#   bash scripts/controlplane.sh --help                          # pins, cache layout
#
# The work is done by scripts/provision/controlplane.py, standard library only: it runs with the
# system python3. Clusters are started from these binaries by scripts/clusters.sh.
python=/usr/bin/python3; [[ -x "$python" ]] || python=python3
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}" \
  exec "$python" -m provision.controlplane "$@"
