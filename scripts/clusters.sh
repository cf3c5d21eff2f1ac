#!/usr/bin/env bash
# scripts/clusters.sh - two local Kubernetes clusters (ingestion, batch) on loopback, no Docker:
# real etcd, kube-apiserver, kube-controller-manager and kube-scheduler, kwok's fake nodes.
#
#   bash scripts/clusters.sh start     # builds the binaries if needed (scripts/controlplane.sh); prints the kubeconfig
#   bash scripts/clusters.sh status
#   bash scripts/clusters.sh stop
#
# The work is done by scripts/provision/clusters.py, standard library only (plus openssl).
python=/usr/bin/python3; [[ -x "$python" ]] || python=python3
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}" \
  exec "$python" -m provision.clusters "$@"
