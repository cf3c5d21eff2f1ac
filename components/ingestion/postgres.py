"""PostgreSQL as the CDC source: logical replication, the e-commerce schema, a CDC user with only
the reads it needs, and a publication for exactly the captured tables, created by the admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.ingestion.config import PostgresConfig, TopicsConfig
from components.quoting import sql_identifier
from components.layer_component import Issuer, Layer, LayerComponent
from components.observability import postgres_exporter
from components.observability.config import PostgresExporterConfig

APP = "postgres"
PORT = 5432
UID = 999  # the official image's postgres user
ADMIN_USER = "postgres"
HEARTBEAT_TABLE = "debezium_heartbeat"
SECRET_NAME = "postgres-credentials"
TLS_SECRET = "postgres-tls"
TLS_DIR = "/etc/postgres-tls"  # tls.crt (certificate chain), tls.key
HBA_PATH = "/datapipe/hba/pg_hba.conf"

# The e-commerce schema of the product description. Keys everywhere: Debezium uses them as Kafka record keys.
TABLE_DDL = {
    "users": """CREATE TABLE IF NOT EXISTS public.users (
    id          BIGSERIAL PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    full_name   TEXT NOT NULL,
    tier        TEXT NOT NULL DEFAULT 'standard' CHECK (tier IN ('standard', 'premium', 'vip')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);""",
    "products": """CREATE TABLE IF NOT EXISTS public.products (
    id          BIGSERIAL PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    price       NUMERIC(12, 2) NOT NULL CHECK (price >= 0),
    stock       INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);""",
    "orders": """CREATE TABLE IF NOT EXISTS public.orders (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES public.users (id),
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    total       NUMERIC(12, 2) NOT NULL DEFAULT 0 CHECK (total >= 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);""",
    "order_items": """CREATE TABLE IF NOT EXISTS public.order_items (
    order_id    BIGINT NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
    product_id  BIGINT NOT NULL REFERENCES public.products (id),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_price  NUMERIC(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, product_id)
);""",
}


def server_settings(config: PostgresConfig, tls_dir: str = TLS_DIR, hba_path: str = HBA_PATH) -> dict[str, str]:
    """postgresql.conf settings, passed as `-c key=value` so a test can start a server the same way."""
    return {
        "listen_addresses": "*",
        "ssl": "on",
        "ssl_cert_file": f"{tls_dir}/tls.crt",
        "ssl_key_file": f"{tls_dir}/tls.key",
        "ssl_min_protocol_version": "TLSv1.2",
        "hba_file": hba_path,
        "wal_level": "logical",
        "max_replication_slots": str(config.max_replication_slots),
        "max_wal_senders": str(config.max_wal_senders),
        "max_slot_wal_keep_size": f"{config.max_slot_wal_keep_size_mib}MB",
        # A quarter of the container for shared buffers is the usual starting point.
        "shared_buffers": f"{config.memory_mib // 4}MB",
        "effective_cache_size": f"{config.memory_mib // 2}MB",
        "max_connections": "50",
    }


def pg_hba() -> str:
    """Who may connect how: over TCP only with TLS and a SCRAM password (the CDC user and the admin
    alike); in the container, the socket takes the postgres OS user as itself (peer)."""
    return ("# TYPE     DATABASE  USER  ADDRESS  METHOD\n"
            "local      all       all            peer\n"
            "hostnossl  all       all   all      reject\n"
            "hostssl    all       all   all      scram-sha-256\n")


def server_args(config: PostgresConfig) -> list[str]:
    args = ["postgres"]
    for key, value in server_settings(config).items():
        args += ["-c", f"{key}={value}"]
    return args


def heartbeat_query() -> str:
    """Run by Debezium every heartbeat: a write in the publication keeps the slot's LSN moving
    even when the captured tables are quiet, so the slot does not pin WAL."""
    return (
        f"INSERT INTO public.{HEARTBEAT_TABLE} (id, ts) VALUES (1, now()) "
        "ON CONFLICT (id) DO UPDATE SET ts = EXCLUDED.ts"
    )


def init_sql(config: PostgresConfig, tables: tuple[str, ...]) -> str:
    """Schema, CDC role and publication. The CDC password arrives as the psql variable
    `cdc_password`, so this text holds no secret and can live in a ConfigMap. Every name from
    the config is a quoted identifier (components/quoting.py)."""
    qualified = ", ".join(f"public.{sql_identifier(t)}" for t in tables)
    user, database, publication = (sql_identifier(name) for name in
                                   (config.cdc_user, config.database, config.publication))
    statements = list(TABLE_DDL.values())
    statements += [f"ALTER TABLE public.{sql_identifier(t)} REPLICA IDENTITY FULL;" for t in tables]
    statements += [
        f"CREATE TABLE IF NOT EXISTS public.{HEARTBEAT_TABLE} (id INTEGER PRIMARY KEY, ts TIMESTAMPTZ NOT NULL);",
        f"INSERT INTO public.{HEARTBEAT_TABLE} (id, ts) VALUES (1, now()) ON CONFLICT (id) DO NOTHING;",
        f"CREATE ROLE {user} WITH LOGIN REPLICATION PASSWORD :'cdc_password';",
        f"GRANT CONNECT ON DATABASE {database} TO {user};",
        f"GRANT USAGE ON SCHEMA public TO {user};",
        # Snapshots read the captured tables; heartbeats write one row. Nothing else.
        f"GRANT SELECT ON {qualified} TO {user};",
        f"GRANT SELECT, INSERT, UPDATE ON public.{HEARTBEAT_TABLE} TO {user};",
        # Owned by the admin, so Debezium runs with publication.autocreate.mode=disabled.
        f"CREATE PUBLICATION {publication} FOR TABLE {qualified}, public.{HEARTBEAT_TABLE};",
    ]
    return "\n".join(statements) + "\n" + postgres_exporter.monitor_role_sql()


# The Secret's keys as files (not env vars, which any process of the container can read and
# crash dumps keep); the image reads POSTGRES_PASSWORD_FILE itself.
SECRETS_DIR = "/run/secrets/postgres"
INIT_SQL_PATH = "/datapipe/sql/init.sql"

INIT_SCRIPT = f"""#!/bin/sh
# Runs once, on an empty data directory (docker-entrypoint-initdb.d). The passwords come from the
# Secret's files, never from the SQL file.
set -eu
psql -v ON_ERROR_STOP=1 -v cdc_password="$(cat {SECRETS_DIR}/cdc-password)" \\
     -v monitor_password="$(cat {SECRETS_DIR}/{postgres_exporter.PASSWORD_KEY})" \\
     --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f {INIT_SQL_PATH}
"""


HEADLESS = "postgres-headless"


def host(namespace: str) -> str:
    return f"{APP}.{namespace}.svc.cluster.local"


def manifests(config: PostgresConfig, tables: tuple[str, ...], namespace: str, layer: str,
              certificate_sha256: Any = "",
              exporter: PostgresExporterConfig = PostgresExporterConfig()) -> list[dict[str, Any]]:
    """Everything but the Secrets (which carry Outputs); `certificate_sha256` (may be an Output):
    a new certificate restarts the server."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    init = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("postgres-init"),
        "data": {"init.sql": init_sql(config, tables), "10-datapipe-init.sh": INIT_SCRIPT},
    }
    hba = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("postgres-hba"), "data": {"pg_hba.conf": pg_hba()}}
    ready = ["pg_isready", "-U", ADMIN_USER, "-d", config.database, "-h", "127.0.0.1"]
    container = {
        "name": APP,
        "image": config.image,
        "args": server_args(config),
        "ports": [{"name": "postgres", "containerPort": PORT}],
        "env": [
            {"name": "POSTGRES_USER", "value": ADMIN_USER},
            {"name": "POSTGRES_DB", "value": config.database},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
            {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/admin-password"},
        ],
        "resources": kube.memory_resources(config.memory_mib, "250m"),
        "securityContext": kube.restricted_security_context(UID),
        # Ready: the server answers a connection to the database. Alive: the postmaster accepts
        # TCP (a server busy in recovery is not ready, but must not be killed for it).
        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 5, "failureThreshold": 6},
        "livenessProbe": {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 30, "periodSeconds": 10,
                          "failureThreshold": 6},
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "init", "mountPath": "/docker-entrypoint-initdb.d/10-datapipe-init.sh",
             "subPath": "10-datapipe-init.sh"},
            {"name": "init", "mountPath": INIT_SQL_PATH, "subPath": "init.sql"},
            {"name": "credentials", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            {"name": "hba", "mountPath": "/datapipe/hba", "readOnly": True},
        ],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(APP),
        "spec": {
            "serviceName": HEADLESS,
            "replicas": 1,
            "selector": {"matchLabels": kube.selector(APP)},
            "template": {
                "metadata": {"labels": kube.labels(APP, layer),
                             "annotations": {"datapipe.io/init-sql-sha256": kube.sha256(init["data"]["init.sql"]),
                                             "datapipe.io/hba-sha256": kube.sha256(hba["data"]["pg_hba.conf"]),
                                             "datapipe.io/certificate-sha256": certificate_sha256}},
                "spec": {
                    **kube.service_account(APP),
                    "enableServiceLinks": False,
                    "securityContext": {"fsGroup": UID, "runAsUser": UID, "runAsNonRoot": True},
                    "containers": [container, postgres_exporter.container(exporter, config.database, PORT, UID)],
                    "volumes": [
                        {"name": "init", "configMap": {"name": "postgres-init", "defaultMode": 0o555}},
                        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                        # Readable by the postgres group only (fsGroup), never world-readable.
                        {"name": "credentials", "secret": {"secretName": SECRET_NAME, "defaultMode": 0o440,
                                                           "items": [{"key": "admin-password", "path": "admin-password"},
                                                                     {"key": "cdc-password", "path": "cdc-password"},
                                                                     {"key": postgres_exporter.PASSWORD_KEY,
                                                                      "path": postgres_exporter.PASSWORD_KEY}]}},
                        postgres_exporter.volume(SECRET_NAME),
                        # Root-owned, group-readable (fsGroup): what PostgreSQL accepts for a key file.
                        {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
                        {"name": "hba", "configMap": {"name": "postgres-hba"}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data", "labels": kube.labels(APP, layer)},
                 "spec": kube.claim_spec(config.storage_mib)}
            ],
        },
    }
    service = kube.node_port_service(meta(APP), kube.selector(APP), "postgres", PORT, config.node_port)
    # The StatefulSet's governing Service (the pod's stable DNS name): headless, as Kubernetes expects.
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": meta(HEADLESS),
                "spec": {"clusterIP": "None", "selector": kube.selector(APP),
                         "ports": [{"name": "postgres", "port": PORT, "targetPort": PORT}]}}
    return [init, hba, service, headless, statefulset]


@dataclass
class PostgresCdcArgs:
    config: PostgresConfig
    topics: TopicsConfig
    layer: Layer
    issuer: Issuer
    exporter: PostgresExporterConfig = PostgresExporterConfig()


class PostgresCdc(LayerComponent):
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    cdc_user: pulumi.Output[str]
    cdc_password: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: PostgresCdcArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer, cfg = args.layer, args.config
        super().__init__("datapipe:ingestion:PostgresCdc", name, layer, opts)
        self.admin_password = self._generated_secret("admin-password")
        self.cdc_password = self._generated_secret("cdc-password")
        monitor_password = self._generated_secret("monitor-password")
        secret = self._secret(SECRET_NAME, APP, {"admin-password": self.admin_password,
                                                 "cdc-password": self.cdc_password, "cdc-user": cfg.cdc_user,
                                                 postgres_exporter.PASSWORD_KEY: monitor_password})
        certificate = self._certificate(args.issuer, APP, [host(layer.namespace), f"{APP}.{layer.namespace}.svc",
                                                          f"{APP}-0.{HEADLESS}.{layer.namespace}.svc.cluster.local"])
        tls = self._secret(TLS_SECRET, APP, {
            "tls.crt": pulumi.Output.concat(certificate.cert_pem, args.issuer.ca.cert_pem),
            "tls.key": certificate.key_pem})
        self._create(manifests(cfg, args.topics.tables, layer.namespace, layer.name,
                               certificate.cert_pem.apply(kube.sha256), args.exporter), depends_on=[secret, tls])

        self.host = pulumi.Output.from_input(host(layer.namespace))
        self.port = pulumi.Output.from_input(PORT)
        self.database = pulumi.Output.from_input(cfg.database)
        self.cdc_user = pulumi.Output.from_input(cfg.cdc_user)
        self.register_outputs({"host": self.host, "port": self.port, "database": self.database,
                               "cdc_user": self.cdc_user, "cdc_password": self.cdc_password,
                               "admin_password": self.admin_password})
