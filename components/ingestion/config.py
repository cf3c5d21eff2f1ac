"""Configuration of the ingestion layer. Defaults reproduce the seed's validated allocation:
Postgres 1Gi, Kafka 3 x 682Mi, Schema Registry 1Gi, Connect 2Gi = 6142Mi of a 6Gi budget."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import Field, model_validator

from components.config_types import Image, NodePort, Strict
from components.quantities import Mebibytes, format_mib


class JvmService(Strict):
    """A JVM container: its heap is derived from the memory limit unless set explicitly."""

    memory_mib: Mebibytes = Field(alias="memory")
    heap_mib: Optional[Mebibytes] = Field(None, alias="heap")

    # Share of the limit used for the heap when `heap` is not set. Off-heap (metaspace, threads,
    # direct buffers) needs the rest; Strimzi's rule of thumb is 50-75%.
    default_heap_percent: ClassVar[int] = 50

    @property
    def effective_heap_mib(self) -> int:
        return self.heap_mib if self.heap_mib is not None else self.memory_mib * self.default_heap_percent // 100

    @model_validator(mode="after")
    def _heap_below_limit(self):
        if self.effective_heap_mib >= self.memory_mib:
            raise ValueError(
                f"heap ({format_mib(self.effective_heap_mib)}) must be below the container memory limit "
                f"({format_mib(self.memory_mib)}); leave room for off-heap memory, e.g. heap <= 75% of memory"
            )
        return self


class PostgresConfig(Strict):
    image: Image = "postgres:16.4"
    memory_mib: Mebibytes = Field(1024, alias="memory")
    storage_mib: Mebibytes = Field(5120, alias="storage")
    node_port: NodePort = 30432
    host_port: int = Field(5432, ge=1, le=65535)
    database: str = "ecommerce"
    cdc_user: str = "cdc_user"
    publication: str = "dbz_publication"
    slot_name: str = "debezium_slot"
    max_replication_slots: int = Field(4, ge=1)
    max_wal_senders: int = Field(8, ge=1)
    # Bounds the WAL a stalled replication slot may pin, so a dead connector cannot fill the disk.
    max_slot_wal_keep_size_mib: Mebibytes = Field(2048, alias="maxSlotWalKeepSize")

    @model_validator(mode="after")
    def _consistent(self):
        if self.max_wal_senders < self.max_replication_slots:
            raise ValueError("maxWalSenders must be at least maxReplicationSlots (each slot needs a sender)")
        if self.max_slot_wal_keep_size_mib >= self.storage_mib:
            raise ValueError("maxSlotWalKeepSize must be below storage, or a stalled slot can fill the volume")
        return self


class KafkaConfig(JvmService):
    image: Image = "apache/kafka:3.9.1"
    brokers: int = Field(3, ge=1, le=9)
    memory_mib: Mebibytes = Field(682, alias="memoryPerBroker")
    storage_per_broker_mib: Mebibytes = Field(3413, alias="storagePerBroker")
    # Host-side access: clients bootstrap through bootstrapHostPort -> bootstrapNodePort; each broker
    # advertises externalHost:(brokerNodePortBase + ordinal), so those ports are mapped 1:1 on the host.
    bootstrap_node_port: NodePort = 30092
    bootstrap_host_port: int = Field(9092, ge=1, le=65535)
    broker_node_port_base: NodePort = 30093
    # KRaft cluster id (22 chars, base64url of 16 bytes). Derived from project and stack if unset.
    cluster_id: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_-]{22}$")

    @property
    def broker_node_ports(self) -> list[int]:
        return [self.broker_node_port_base + i for i in range(self.brokers)]


class TopicsConfig(Strict):
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(3, ge=1)
    min_insync_replicas: int = Field(2, ge=1)
    compression: Literal["lz4", "snappy", "zstd", "gzip", "producer", "uncompressed"] = "lz4"
    retention_hours: int = Field(168, ge=1)
    # Which of the e-commerce tables are captured (each gets a topic postgres.public.<table>).
    tables: tuple[Literal["users", "products", "orders", "order_items"], ...] = Field(
        ("users", "products", "orders", "order_items"), min_length=1
    )


class SchemaRegistryConfig(JvmService):
    image: Image = "confluentinc/cp-schema-registry:7.9.1"
    memory_mib: Mebibytes = Field(1024, alias="memory")
    node_port: NodePort = 30081
    host_port: int = Field(8081, ge=1, le=65535)
    compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"
    ] = "BACKWARD"


class ConnectPlugins(Strict):
    debezium_postgres: str = "3.6.1.Final"
    confluent_s3_sink: str = "10.6.7"


class KafkaConnectConfig(JvmService):
    image: Image = "confluentinc/cp-kafka-connect:7.9.1"
    replicas: int = Field(1, ge=1)
    memory_mib: Mebibytes = Field(2048, alias="memory")
    # 75% of 2Gi is the seed's 1536Mi heap; Connect's converters and tasks live on the heap.
    default_heap_percent: ClassVar[int] = 75
    node_port: NodePort = 30083
    host_port: int = Field(8083, ge=1, le=65535)
    plugins: ConnectPlugins = ConnectPlugins()


class S3SinkConfig(Strict):
    """How the archive is written. Where it goes (bucket, region, endpoint) and the key it writes
    with come from the cloud layer at deploy time, not from config (see ResolvedS3Sink)."""

    prefix: str = Field("cdc", pattern=r"^[A-Za-z0-9_.-]+$")
    flush_size: int = Field(1000, ge=1)
    rotate_interval_seconds: int = Field(60, ge=1)

    def resolve(self, bucket: str, region: str, endpoint_url: Optional[str]) -> "ResolvedS3Sink":
        return ResolvedS3Sink(**self.model_dump(), bucket=bucket, region=region, endpoint_url=endpoint_url)


class ResolvedS3Sink(S3SinkConfig):
    """The sink settings joined with the bucket the cloud layer created (values, not Outputs)."""

    bucket: str = Field(min_length=3, max_length=63)
    region: str
    # An S3-compatible endpoint (the in-cluster object store); None means AWS.
    endpoint_url: Optional[str] = Field(None, pattern=r"^https?://")


class IngestionConfig(Strict):
    namespace: str = Field("data-ingestion", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    memory_budget_mib: Mebibytes = Field(6144, alias="memoryBudget")
    storage_budget_mib: Mebibytes = Field(15360, alias="storageBudget")
    # The host name clients on the host use (Kind maps the NodePorts to it; see kind/).
    external_host: str = "localhost"
    # Sources allowed to reach the NodePorts (the host). Narrow this outside local development.
    host_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    postgres: PostgresConfig = PostgresConfig()
    kafka: KafkaConfig = KafkaConfig()
    topics: TopicsConfig = TopicsConfig()
    schema_registry: SchemaRegistryConfig = SchemaRegistryConfig()
    kafka_connect: KafkaConnectConfig = KafkaConnectConfig()
    s3_sink: S3SinkConfig = S3SinkConfig()

    def memory_allocation_mib(self) -> dict[str, int]:
        """Memory limit each service runs with, replicas included (what the quota must hold)."""
        return {
            "postgres": self.postgres.memory_mib,
            "kafka": self.kafka.brokers * self.kafka.memory_mib,
            "schema-registry": self.schema_registry.memory_mib,
            "kafka-connect": self.kafka_connect.replicas * self.kafka_connect.memory_mib,
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
        seen: dict[int, str] = {}
        for key, port in self.node_ports().items():
            if port in seen:
                problems.append(f"{key} and {seen[port]} both use NodePort {port}; each service needs its own")
            seen.setdefault(port, key)
        if max(kafka.broker_node_ports) > 32767:
            problems.append("kafka.brokerNodePortBase + brokers runs past the NodePort range (30000-32767)")
        total = sum(self.memory_allocation_mib().values())
        if total > self.memory_budget_mib:
            detail = ", ".join(f"{k} {format_mib(v)}" for k, v in self.memory_allocation_mib().items())
            problems.append(
                f"memory limits total {format_mib(total)} ({detail}), above memoryBudget "
                f"{format_mib(self.memory_budget_mib)}; lower a service's memory or raise memoryBudget"
            )
        storage = sum(self.storage_allocation_mib().values())
        if storage > self.storage_budget_mib:
            problems.append(
                f"storage requests total {format_mib(storage)}, above storageBudget {format_mib(self.storage_budget_mib)}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self
