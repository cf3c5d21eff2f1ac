"""Configuration of the ingestion layer. Defaults follow the allocation the product description
validated (Postgres 1Gi, Kafka 3 x 682Mi, Schema Registry 1Gi, Connect 2Gi = 6142Mi of a 6Gi budget)
with room made for monitoring: PostgreSQL 640Mi (its peak under the 15,000 events/s benchmark was
330Mi of 1Gi), its metrics exporter 64Mi and the layer's Prometheus 320Mi. Still 6142Mi."""

from __future__ import annotations

import base64
import re
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from components.observability.config import IngestionMonitoringConfig
from components.config_types import (INT32_MAX, INT64_MAX, Image, JvmService, LayerConfig,
                                     Mebibytes, Namespace, NodePort, Strict)

__all__ = [  # JvmService lives in components.config_types; importable from here as before.
    "JvmService", "PostgresConfig", "KafkaConfig", "TopicsConfig", "SchemaRegistryConfig", "ConnectPlugins",
    "KafkaConnectConfig", "S3SinkConfig", "ResolvedS3Sink", "IngestionConfig",
]


def _sql_identifier(value: str) -> str:
    # Lower case only: unquoted references (Debezium's publication.name, psql's -d) fold to lower
    # case, so a name with capitals would not be the one the quoted DDL created.
    if len(value) > 63 or not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
        raise ValueError(f"{value!r} is not a lower-case SQL identifier: a letter or '_', then letters, digits "
                         "or '_', at most 63 characters (PostgreSQL's NAMEDATALEN)")
    return value


def _slot_name(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]{1,63}", value):
        raise ValueError(f"{value!r} is not a replication slot name: 1-63 lower-case letters, digits or '_'")
    return value


# A PostgreSQL name the init SQL creates (quoted there as well, components/quoting.py).
SqlIdentifier = Annotated[str, AfterValidator(_sql_identifier)]
SlotName = Annotated[str, AfterValidator(_slot_name)]
# Role names PostgreSQL reserves or reads as something else.
RESERVED_ROLES = ("public", "none", "current_user", "current_role", "session_user")
# The image's superuser (components/ingestion/postgres.py ADMIN_USER).
ADMIN_ROLE = "postgres"
# PostgreSQL's limit on int settings (max_slot_wal_keep_size counts MB), and on settings that
# count 8kB pages (effective_cache_size is half the memory).
PG_INT_MAX = INT32_MAX
PG_MAX_BACKENDS = 2**18 - 1


class PostgresConfig(Strict):
    image: Image = Field("postgres:16.4", description="PostgreSQL container image, pinned to a tag or digest")
    memory_mib: Mebibytes = Field(640, alias="memory", description="Container memory request and limit, a size "
                                                                    "(shared_buffers is a quarter of it)")
    storage_mib: Mebibytes = Field(5120, alias="storage", description="Size of the data volume claim")
    node_port: NodePort = Field(30432, description="NodePort host clients reach PostgreSQL through")
    host_port: int = Field(5432, ge=1, le=65535, description="Host port Kind maps to nodePort (kind/); the port in "
                                                             "the ingestionEndpoints output")
    database: SqlIdentifier = Field("ecommerce", description="Database created at first start (a lower-case SQL "
                                                             "identifier, not template0/template1); the captured "
                                                             "tables live in its public schema")
    cdc_user: SqlIdentifier = Field("cdc_user", description="Replication role Debezium logs in as (a lower-case SQL "
                                                            "identifier, not postgres or a reserved role name; its "
                                                            "password is generated per stack); may read only the "
                                                            "captured tables")
    publication: SqlIdentifier = Field("dbz_publication", description="Publication over the captured tables that "
                                                                      "Debezium reads (pgoutput); a lower-case SQL "
                                                                      "identifier")
    slot_name: SlotName = Field("debezium_slot", description="Logical replication slot Debezium streams from (1-63 "
                                                             "lower-case letters, digits or '_')")
    max_replication_slots: int = Field(4, ge=1, le=PG_MAX_BACKENDS, description="PostgreSQL max_replication_slots")
    max_wal_senders: int = Field(8, ge=1, le=PG_MAX_BACKENDS,
                                 description="PostgreSQL max_wal_senders; at least maxReplicationSlots")
    # Bounds the WAL a stalled replication slot may pin, so a dead connector cannot fill the disk.
    max_slot_wal_keep_size_mib: Mebibytes = Field(
        2048, alias="maxSlotWalKeepSize",
        description="PostgreSQL max_slot_wal_keep_size, a size below storage: the most WAL a stalled slot may "
                    "keep, so a dead connector cannot fill the volume")

    @field_validator("database")
    @classmethod
    def _not_a_template(cls, value: str) -> str:
        if value in ("template0", "template1"):
            raise ValueError(f"{value!r} is one of PostgreSQL's template databases; name the CDC source's own")
        return value

    @field_validator("cdc_user")
    @classmethod
    def _not_a_reserved_role(cls, value: str) -> str:
        if value == ADMIN_ROLE:
            raise ValueError(f"{value!r} is the superuser; the CDC role must be its own, least-privileged role")
        if value in RESERVED_ROLES or value.startswith("pg_"):
            raise ValueError(f"{value!r} is a role name PostgreSQL reserves (public, none, current_user, "
                             "current_role, session_user, pg_*)")
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.max_wal_senders < self.max_replication_slots:
            raise ValueError("maxWalSenders must be at least maxReplicationSlots (each slot needs a sender)")
        if self.max_slot_wal_keep_size_mib >= self.storage_mib:
            raise ValueError("maxSlotWalKeepSize must be below storage, or a stalled slot can fill the volume")
        if self.max_slot_wal_keep_size_mib > PG_INT_MAX:
            raise ValueError("maxSlotWalKeepSize is above PostgreSQL's limit for the setting (2147483647MB)")
        # effective_cache_size (half the memory) counts 8kB pages in a PostgreSQL int.
        if self.memory_mib // 2 * 128 > PG_INT_MAX:
            raise ValueError("memory is above what PostgreSQL's effective_cache_size (half of it) can hold; "
                             "at most 32Ti")
        return self


class KafkaConfig(JvmService):
    image: Image = Field("apache/kafka:3.9.1", description="Kafka container image (KRaft), pinned to a tag or digest")
    brokers: int = Field(3, ge=1, le=9, description="Number of brokers; the first three are also the KRaft controllers (a fixed "
                                                     "voter set, so brokers can be added to a running cluster)")
    memory_mib: Mebibytes = Field(682, alias="memoryPerBroker",
                                  description="Memory request and limit of each broker's container, a size")
    storage_per_broker_mib: Mebibytes = Field(3413, alias="storagePerBroker",
                                              description="Size of each broker's data volume claim")
    # Host-side access: clients bootstrap through bootstrapHostPort -> bootstrapNodePort; each broker
    # advertises externalHost:(brokerNodePortBase + ordinal), so those ports are mapped 1:1 on the host.
    bootstrap_node_port: NodePort = Field(30092, description="NodePort host clients bootstrap through")
    bootstrap_host_port: int = Field(9092, ge=1, le=65535,
                                     description="Host port Kind maps to bootstrapNodePort (kind/)")
    broker_node_port_base: NodePort = Field(
        30093, description="NodePort of broker 0; broker n advertises externalHost:(this + n), mapped 1:1 on the "
                           "host, so brokerNodePortBase + brokers - 1 must stay in the NodePort range")
    # KRaft cluster id (22 chars, base64url of 16 bytes). Derived from project and stack if unset.
    cluster_id: Optional[str] = Field(
        None, pattern=r"^[A-Za-z0-9_-]{22}$",
        description="KRaft cluster id (22 characters, base64url of 16 bytes). Unset: derived from the project "
                    "and stack name, stable across updates")

    @field_validator("cluster_id")
    @classmethod
    def _canonical_uuid(cls, value: Optional[str]) -> Optional[str]:
        # Kafka decodes the id to 16 bytes and writes it back encoded: spare bits in the last
        # character would come back as another id than the one the storage was formatted with.
        canonical = value and base64.urlsafe_b64encode(base64.urlsafe_b64decode(value + "==")).decode()[:22]
        if value is not None and canonical != value:
            raise ValueError(f"{value!r} is not the canonical base64url encoding of 16 bytes (its last character "
                             "has bits set that Kafka drops), e.g. one printed by kafka-storage.sh random-uuid")
        return value

    @property
    def broker_node_ports(self) -> list[int]:
        return [self.broker_node_port_base + i for i in range(self.brokers)]


class TopicsConfig(Strict):
    partitions: int = Field(6, ge=1, le=INT32_MAX, description="Partitions of each CDC topic; an update raises "
                                                               "an existing topic's count, never lowers it")
    replication_factor: int = Field(3, ge=1, le=2**15 - 1,
                                    description="Replicas of each topic (also Connect's and Schema Registry's "
                                                "internal topics); at most brokers")
    min_insync_replicas: int = Field(2, ge=1, le=INT32_MAX,
                                     description="Kafka min.insync.replicas; at most replicationFactor")
    compression: Literal["lz4", "snappy", "zstd", "gzip", "producer", "uncompressed"] = Field(
        "lz4", description="Kafka compression.type of the topics")
    # Kafka's log.retention.hours is a Java int; retention.ms (hours x 3600000) then fits a long.
    retention_hours: int = Field(168, ge=1, le=INT32_MAX,
                                 description="How long the topics keep events, in hours (Kafka's "
                                             "log.retention.hours, a Java int)")
    # Which of the e-commerce tables are captured (each gets a topic postgres.public.<table>).
    tables: tuple[Literal["users", "products", "orders", "order_items"], ...] = Field(
        ("users", "products", "orders", "order_items"), min_length=1,
        description="E-commerce tables captured, each once; each gets the topic `postgres.public.<table>`"
    )

    @field_validator("tables")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({table for table in value if value.count(table) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} more than once (a publication takes each table once)")
        return value


class SchemaRegistryConfig(JvmService):
    image: Image = Field("confluentinc/cp-schema-registry:7.9.1",
                         description="Schema Registry container image, pinned to a tag or digest")
    memory_mib: Mebibytes = Field(1024, alias="memory", description="Container memory request and limit, a size")
    node_port: NodePort = Field(30081, description="NodePort host clients reach Schema Registry through")
    host_port: int = Field(8081, ge=1, le=65535, description="Host port Kind maps to nodePort (kind/)")
    compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = Field("BACKWARD", description="Default schema compatibility level of the registry")


# Debezium's release versions on Maven Central: x.y.z.Final, or a pre-release (Alpha1, Beta2, CR1).
DEBEZIUM_VERSION = r"^[0-9]+\.[0-9]+\.[0-9]+\.(Final|Alpha[0-9]+|Beta[0-9]+|CR[0-9]+)$"
# Confluent Hub component versions: x.y.z.
SEMVER_CORE = r"^[0-9]+\.[0-9]+\.[0-9]+$"


SHA512_HEX = r"^[0-9a-f]{128}$"
# An https URL of a plugin archive: host, path and query of URL-safe characters only (it is also a shell word).
ARCHIVE_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/%+-]+\.zip$"
# SHA-512 of the Debezium plugin archive of each version this project has checked (the file as
# downloaded, equal to what Maven Central publishes next to it as <archive>.sha512).
DEBEZIUM_ARCHIVE_SHA512 = {
    "3.6.1.Final": "774f6854a6c1c9a7ad3bdb6ddd367e9479a0b80e511ea27fc361320a955f9bf5"
                   "7a72393ff0e045b868b63589e7e16c27266cda296d9b1419bb071e914ee4d212",
}


def debezium_archive_url(version: str) -> str:
    return ("https://repo1.maven.org/maven2/io/debezium/debezium-connector-postgres/"
            f"{version}/debezium-connector-postgres-{version}-plugin.tar.gz")


class ConnectPlugins(Strict):
    # Declared before the version, so the version's check can see it (pydantic validates in order).
    debezium_postgres_sha512: Optional[str] = Field(
        None, pattern=SHA512_HEX,
        description="SHA-512 (128 lowercase hex digits) of the Debezium plugin archive, checked before it is "
                    "unpacked; required for a version other than the default (Maven Central publishes it as "
                    "<archive URL>.sha512)")
    debezium_postgres: str = Field("3.6.1.Final", pattern=DEBEZIUM_VERSION,
                                   description="Debezium PostgreSQL connector version (x.y.z.Final, or a "
                                               "pre-release such as x.y.z.CR1), installed from Maven Central at "
                                               "pod start")
    confluent_s3_sink: str = Field("10.6.7", pattern=SEMVER_CORE,
                                   description="Confluent S3 sink connector version (x.y.z), installed from "
                                               "Confluent Hub at pod start")
    confluent_s3_sink_archive: Optional[str] = Field(
        None, pattern=ARCHIVE_URL,
        description="https URL of the S3 sink's plugin archive (.zip, e.g. Confluent Hub's download or a mirror "
                    "of it); with confluentS3SinkSha512, the archive is downloaded, checked against the hash and "
                    "installed from the file. Unset: confluent-hub installs the version, unverified")
    confluent_s3_sink_sha512: Optional[str] = Field(
        None, pattern=SHA512_HEX,
        description="SHA-512 (128 lowercase hex digits) of confluentS3SinkArchive; set both or neither")

    @model_validator(mode="after")
    def _s3_sink_archive_with_its_hash(self):
        if (self.confluent_s3_sink_archive is None) != (self.confluent_s3_sink_sha512 is None):
            raise ValueError("confluentS3SinkArchive and confluentS3SinkSha512 go together: the archive is installed "
                             "only after its SHA-512 is checked")
        return self

    @field_validator("debezium_postgres")
    @classmethod
    def _debezium_archive_is_pinned(cls, version: str, info: ValidationInfo) -> str:
        # An invalid hash is reported by its own field; only a missing one is reported here.
        if "debezium_postgres_sha512" in info.data and info.data["debezium_postgres_sha512"] is None \
                and version not in DEBEZIUM_ARCHIVE_SHA512:
            raise ValueError(
                f"Debezium {version} has no pinned archive hash: set debeziumPostgresSha512, the archive is checked "
                f"against it before it is unpacked; Maven Central publishes it at {debezium_archive_url(version)}.sha512")
        return version

    @property
    def debezium_archive_sha512(self) -> str:
        return self.debezium_postgres_sha512 or DEBEZIUM_ARCHIVE_SHA512[self.debezium_postgres]


class KafkaConnectConfig(JvmService):
    image: Image = Field("confluentinc/cp-kafka-connect:7.9.1",
                         description="Kafka Connect container image, pinned to a tag or digest")
    replicas: int = Field(1, ge=1, le=INT32_MAX, description="Connect workers (distributed mode)")
    memory_mib: Mebibytes = Field(2048, alias="memory",
                                  description="Memory request and limit of each worker's container, a size")
    # 75% of 2Gi is the product description's 1536Mi heap; Connect's converters and tasks live on the heap.
    default_heap_percent: ClassVar[int] = 75
    # Off by default: the REST API has no authentication, and whoever reaches it can create a
    # connector that reads the worker's mounted secrets.
    expose_rest: bool = Field(False, alias="exposeRest",
                              description="Open the REST API to host clients on nodePort (and the "
                                          "ingestionEndpoints.kafkaConnect output). Off: the API is reachable "
                                          "in the cluster only (kubectl port-forward for a look); it has no "
                                          "authentication")
    node_port: NodePort = Field(30083, description="NodePort host clients reach the Connect REST API through, "
                                                   "when exposeRest is on")
    host_port: int = Field(8083, ge=1, le=65535, description="Host port Kind maps to nodePort (kind/)")
    plugins: ConnectPlugins = Field(ConnectPlugins(), description="Connector plugin versions")


class S3SinkConfig(Strict):
    """How the archive is written. Where it goes (bucket, region, endpoint) and the key it writes
    with come from the cloud layer at deploy time, not from config (see ResolvedS3Sink)."""

    prefix: str = Field("cdc", pattern=r"^[A-Za-z0-9_.-]+$", max_length=255,
                        description="Key prefix of the archive in the raw bucket (the sink's topics.dir): letters, "
                                    "digits, '_', '.', '-', not . or ..")
    # flush.size is a Java int, rotate.schedule.interval.ms a Java long.
    flush_size: int = Field(1000, ge=1, le=INT32_MAX, description="Records per Parquet file before the sink "
                                                                  "writes it")
    rotate_interval_seconds: int = Field(60, ge=1, le=INT64_MAX // 1000,
                                         description="Seconds after which the sink writes a file even if "
                                                     "flushSize is not reached")

    @field_validator("prefix")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError(f"{value!r} is a relative path step, not a key prefix")
        return value

    def resolve(self, bucket: str, region: str, endpoint_url: Optional[str]) -> "ResolvedS3Sink":
        return ResolvedS3Sink(**self.model_dump(), bucket=bucket, region=region, endpoint_url=endpoint_url)


class ResolvedS3Sink(S3SinkConfig):
    """The sink settings joined with the bucket the cloud layer created (values, not Outputs)."""

    bucket: str = Field(min_length=3, max_length=63, description="Raw bucket the cloud layer created")
    region: str = Field(description="S3 region of the bucket")
    # An S3-compatible endpoint (the in-cluster object store); None means AWS.
    endpoint_url: Optional[str] = Field(None, pattern=r"^https?://",
                                        description="S3-compatible endpoint (the in-cluster object store). "
                                                    "None: AWS S3")


class IngestionConfig(LayerConfig):
    namespace: Namespace = Field("data-ingestion", description="Kubernetes namespace of the layer, created by the "
                                                               "program (a DNS-1123 label, not default or kube-*)")
    memory_budget_mib: Mebibytes = Field(6144, alias="memoryBudget",
                                         description="Memory the layer may use, a size: the namespace's "
                                                     "ResourceQuota; the services' limits must fit in it")
    storage_budget_mib: Mebibytes = Field(15360, alias="storageBudget",
                                          description="Storage the layer may claim, a size: the namespace's "
                                                      "ResourceQuota; the volume claims must fit in it")
    postgres: PostgresConfig = Field(PostgresConfig(), description="PostgreSQL, the CDC source")
    kafka: KafkaConfig = Field(KafkaConfig(), description="The Kafka cluster (KRaft)")
    topics: TopicsConfig = Field(
        TopicsConfig(),
        description="The CDC topics. `pulumi up` applies a change to existing topics (it rolls the Connect pod, "
                    "whose `topics` init container runs the script): configs always, partitions only upwards "
                    "(keys then hash to other partitions); a lower count or another replication factor is logged "
                    "and left alone")
    schema_registry: SchemaRegistryConfig = Field(SchemaRegistryConfig(), description="Schema Registry")
    kafka_connect: KafkaConnectConfig = Field(KafkaConnectConfig(), description="Kafka Connect in distributed "
                                                                                "mode (G1GC)")
    s3_sink: S3SinkConfig = Field(S3SinkConfig(), description="The S3 sink that archives the topics as Parquet; "
                                                              "its bucket and key come from the cloud layer")
    monitoring: IngestionMonitoringConfig = Field(IngestionMonitoringConfig(),
                                                  description="Metrics, the layer's Prometheus, alerts and dashboard")

    def memory_allocation_mib(self) -> dict[str, int]:
        """Memory limit each service runs with, replicas included (what the quota must hold)."""
        return {
            "postgres": self.postgres.memory_mib,
            "kafka": self.kafka.brokers * self.kafka.memory_mib,
            "schema-registry": self.schema_registry.memory_mib,
            "kafka-connect": self.kafka_connect.replicas * self.kafka_connect.memory_mib,
            "postgres-exporter": self.monitoring.postgres_exporter.memory_mib,
            **({"prometheus": self.monitoring.prometheus_memory_mib} if self.monitoring.prometheus.enabled else {}),
        }

    def storage_allocation_mib(self) -> dict[str, int]:
        return {"postgres": self.postgres.storage_mib, "kafka": self.kafka.brokers * self.kafka.storage_per_broker_mib}

    def node_ports(self) -> dict[str, int]:
        ports = {
            "postgres.nodePort": self.postgres.node_port,
            "kafka.bootstrapNodePort": self.kafka.bootstrap_node_port,
            "schemaRegistry.nodePort": self.schema_registry.node_port,
            "kafkaConnect.nodePort": self.kafka_connect.node_port,
        }
        for ordinal, port in enumerate(self.kafka.broker_node_ports):
            ports[f"kafka.brokerNodePortBase+{ordinal}"] = port
        return ports

    @model_validator(mode="after")
    def _cross_checks(self):
        problems = []
        topics, kafka = self.topics, self.kafka
        if topics.replication_factor > kafka.brokers:
            problems.append(
                f"topics.replicationFactor ({topics.replication_factor}) exceeds kafka.brokers ({kafka.brokers}); "
                f"allowed: 1..{kafka.brokers}"
            )
        if topics.min_insync_replicas > topics.replication_factor:
            problems.append(
                f"topics.minInsyncReplicas ({topics.min_insync_replicas}) exceeds topics.replicationFactor "
                f"({topics.replication_factor})"
            )
        problems += self.node_port_problems(self.node_ports())
        if max(kafka.broker_node_ports) > 32767:
            problems.append("kafka.brokerNodePortBase + brokers runs past the NodePort range (30000-32767)")
        problems += self.budget_problems(self.memory_allocation_mib(), self.storage_allocation_mib())
        if problems:
            raise ValueError("; ".join(problems))
        return self
