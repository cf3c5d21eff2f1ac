"""PostgreSQL's metrics: the Prometheus community's postgres_exporter as a sidecar of the database
pod, logged in as a role with only `pg_monitor`. Its default collectors include what a CDC source
needs: the replication slots (`pg_replication_slots_*`: WAL retained, active, wal_status), the
databases' connections and commits (`pg_stat_database_*`) and `pg_up`."""

from __future__ import annotations

from typing import Any

from components import kube
from components.observability.config import PostgresExporterConfig

PORT = 9187
MONITOR_USER = "datapipe_monitor"
PASSWORD_KEY = "monitor-password"
SECRETS_DIR = "/run/secrets/postgres-monitor"
VOLUME = "monitor-credentials"


def monitor_role_sql() -> str:
    """The exporter's role: pg_monitor reads the statistics views and replication slots, nothing
    of the data. Its password arrives as the psql variable `monitor_password`."""
    return (f"CREATE ROLE {MONITOR_USER} WITH LOGIN CONNECTION LIMIT 3 PASSWORD :'monitor_password';\n"
            f"GRANT pg_monitor TO {MONITOR_USER};\n")


def container(config: PostgresExporterConfig, database: str, port: int, uid: int) -> dict[str, Any]:
    return {
        "name": "postgres-exporter",
        "image": config.image,
        "args": [f"--web.listen-address=:{PORT}",
                 # pg_settings as series: hundreds of them, and no alert needs one.
                 "--disable-settings-metrics"],
        "env": [
            # Over the pod's loopback: TLS (pg_hba refuses anything else), not verified against a
            # host name, since the connection never leaves the pod's network namespace.
            {"name": "DATA_SOURCE_URI", "value": f"localhost:{port}/{database}?sslmode=require"},
            {"name": "DATA_SOURCE_USER", "value": MONITOR_USER},
            {"name": "DATA_SOURCE_PASS_FILE", "value": f"{SECRETS_DIR}/{PASSWORD_KEY}"},
        ],
        "ports": [{"name": "metrics", "containerPort": PORT}],
        "resources": kube.memory_resources(config.memory_mib, "50m"),
        "securityContext": kube.restricted_security_context(uid),
        # Ready: it serves its landing page. Alive: it accepts TCP.
        "readinessProbe": {"httpGet": {"path": "/", "port": PORT}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 10, "periodSeconds": 15,
                          "failureThreshold": 6},
        "volumeMounts": [{"name": VOLUME, "mountPath": SECRETS_DIR, "readOnly": True}],
    }


def volume(secret_name: str) -> dict[str, Any]:
    return {"name": VOLUME, "secret": {"secretName": secret_name, "defaultMode": 0o440,
                                        "items": [{"key": PASSWORD_KEY, "path": PASSWORD_KEY}]}}
