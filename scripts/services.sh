#!/usr/bin/env bash
# scripts/services.sh - real PostgreSQL (apt), Kafka + Connect + Debezium, Spark and the Prometheus
# JMX exporter agent (Maven Central), SeaweedFS and Prometheus + promtool (Go module proxy) for
# tests/services/ and tests/observability/, provisioned once into
# ${DATAPIPE_SERVICES_CACHE:-$HOME/.cache/datapipe-services}.
#
#   bash scripts/services.sh                                 # ensure it all; progress on stderr
#   source "$(bash scripts/services.sh --print-env-file)"    # same; stdout is only the env file
#   bash scripts/services.sh --help                          # the cache layout and what env.sh exports
#
# The work is done by scripts/provision/services.py, standard library only: it runs with the system
# python3 (/usr/bin/python3 when there is one: no virtualenv or version-manager shim in between).
python=/usr/bin/python3; [[ -x "$python" ]] || python=python3
PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}" \
  exec "$python" -m provision.services "$@"
