"""The stack configuration: one pydantic model tree, validated once before any resource exists.

Stack config lives under the `datapipe:` namespace of `Pulumi.<stack>.yaml`. Every model forbids
unknown keys and takes camelCase keys, the convention of Pulumi stack files. Errors are collected
and reported together with the full key path (`datapipe:ingestion.kafka.brokers`) so a user can
fix all of them in one go.
"""

from __future__ import annotations

import json
import os.path
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from pydantic import Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from components.batch import memory as batch_memory
from components.batch.config import BatchConfig
from components.cloud.config import CloudConfig
from components.config_types import INT32_MAX, ClusterTarget, Strict
from components.ingestion.config import IngestionConfig

NAMESPACE = "datapipe"


class ConfigError(Exception):
    """Raised for invalid stack configuration; the message lists every offending key."""


class ClustersConfig(Strict):
    ingestion: ClusterTarget = Field(ClusterTarget(kube_context="kind-data-ingestion"),
                                     description="Where the ingestion layer goes (kind/ingestion-cluster.yaml)")
    batch: ClusterTarget = Field(ClusterTarget(kube_context="kind-batch-analytics"),
                                 description="Where the batch layer goes (kind/batch-cluster.yaml)")


class TlsConfig(Strict):
    rotation: int = Field(0, ge=0, le=INT32_MAX,
                          description="Bump to issue a new CA and new leaf certificates for every service: the "
                                      "next `pulumi up` replaces the stack's CA (components/tls.py) and every "
                                      "certificate it signed")


class StackConfig(Strict):
    clusters: ClustersConfig = Field(ClustersConfig(), description="The Kubernetes cluster of each layer")
    ingestion: IngestionConfig = Field(IngestionConfig(), description="The ingestion layer: PostgreSQL, Kafka, "
                                                                      "Schema Registry, Kafka Connect")
    batch: BatchConfig = Field(BatchConfig(), description="The batch layer: the Spark operator, Spark, the History "
                                                          "Server, dbt")
    cloud: CloudConfig = Field(CloudConfig(), description="The buckets (AWS S3 or the in-cluster store) and "
                                                          "Snowflake")
    tls: TlsConfig = Field(TlsConfig(), description="The stack's certificate authority and the certificates it "
                                                    "signs for the services (keys only in the stack's state, as "
                                                    "secrets, and in Kubernetes Secrets)")

    @property
    def dbt_enabled(self) -> bool:
        explicit = self.batch.dbt.enabled
        return self.cloud.snowflake.enabled if explicit is None else explicit

    @property
    def object_store(self):
        """The in-cluster store's config when it holds the buckets, else None."""
        return self.cloud.object_store if self.cloud.object_store_enabled else None

    def batch_memory_allocation_mib(self) -> dict[str, int]:
        return batch_memory.memory_allocation_mib(self.batch, self.object_store, self.dbt_enabled)

    def batch_storage_allocation_mib(self) -> dict[str, int]:
        return batch_memory.storage_allocation_mib(self.batch, self.object_store)

    @model_validator(mode="after")
    def _cross_layer_checks(self):
        """Checks that span sections: each message names the keys involved."""
        problems = []
        batch, cloud = self.batch, self.cloud
        problems += self._distinct_destinations()
        missing = cloud.snowflake.missing_settings()
        if missing:
            keys = ", ".join(f"{NAMESPACE}:cloud.snowflake.{key}" for key in missing)
            problems.append(f"{NAMESPACE}:cloud.snowflake.enabled is true but these keys are not set: {keys}; "
                            "set them, or switch Snowflake off with enabled: false")
        if batch.dbt.enabled and not cloud.snowflake.enabled:
            problems.append(f"{NAMESPACE}:batch.dbt.enabled is true but {NAMESPACE}:cloud.snowflake.enabled is false; "
                            "dbt's only target is Snowflake")
        log_dir = batch.history_server.event_log_dir
        if log_dir is not None and log_dir.split("/")[2] not in self._bucket_names():
            where = ", ".join(self._bucket_names()) or (
                "none is named yet: set cloud.aws.lakeBucket.name, a generated name is only known at deploy time")
            problems.append(f"{NAMESPACE}:batch.historyServer.eventLogDir must be in the lake or raw bucket "
                            f"({where}); Spark's key reaches no other bucket")
        # The batch layer's own checks (LayerConfig) run here: what it runs and the ports opened on its
        # cluster depend on the cloud section (the in-cluster store, Snowflake for dbt).
        ports = {"batch.spark.uiNodePort": batch.spark.ui_node_port,
                 "batch.historyServer.nodePort": batch.history_server.node_port}
        if self.object_store is not None:
            ports["cloud.objectStore.nodePort"] = self.object_store.node_port
        problems += batch.node_port_problems(ports, key_prefix=f"{NAMESPACE}:")
        problems += batch.budget_problems(self.batch_memory_allocation_mib(), self.batch_storage_allocation_mib(),
                                          prefix=f"{NAMESPACE}:batch: ")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _distinct_destinations(self) -> list[str]:
        """Two keys that must not name the same thing: the layers' render directories (the second
        layer's manifests would land among the first's), and a raw and a lake bucket (the sink's
        and Spark's keys are scoped per bucket: one bucket would give each the other's data)."""
        problems = []
        ingestion, batch = self.clusters.ingestion.render_directory, self.clusters.batch.render_directory
        if ingestion is not None and batch is not None and os.path.normpath(ingestion) == os.path.normpath(batch):
            problems.append(f"{NAMESPACE}:clusters.batch.renderDirectory and "
                            f"{NAMESPACE}:clusters.ingestion.renderDirectory name the same directory ({batch!r}); "
                            "each layer needs its own")
        store, aws = self.cloud.object_store, self.cloud.aws
        if store.raw_bucket == store.lake_bucket:
            problems.append(f"{NAMESPACE}:cloud.objectStore.lakeBucket and {NAMESPACE}:cloud.objectStore.rawBucket "
                            f"name the same bucket ({store.raw_bucket!r}); the lake needs its own")
        if aws.raw_bucket.name is not None and aws.raw_bucket.name == aws.lake_bucket.name:
            problems.append(f"{NAMESPACE}:cloud.aws.lakeBucket.name and {NAMESPACE}:cloud.aws.rawBucket.name "
                            f"name the same bucket ({aws.raw_bucket.name!r}); the lake needs its own")
        return problems

    def _bucket_names(self) -> tuple[str, ...]:
        if self.object_store is not None:
            return (self.object_store.raw_bucket, self.object_store.lake_bucket)
        return tuple(b.name for b in (self.cloud.aws.lake_bucket, self.cloud.aws.raw_bucket) if b.name)


# Top-level keys of the `datapipe:` namespace that hold plain (non-secret) structured config.
STRUCTURED_KEYS = tuple(to_camel(name) for name in StackConfig.model_fields)
# Secret keys read with require_secret; listed so the unknown-key check accepts them.
SNOWFLAKE_PRIVATE_KEY = "snowflakePrivateKey"
SNOWFLAKE_DBT_PRIVATE_KEY = "snowflakeDbtPrivateKey"
SECRET_KEYS = (SNOWFLAKE_PRIVATE_KEY, SNOWFLAKE_DBT_PRIVATE_KEY)
SECRET_DESCRIPTIONS = {
    SNOWFLAKE_PRIVATE_KEY: "PEM private key Pulumi logs in to Snowflake with (key-pair JWT); required when "
                           "cloud.snowflake.enabled",
    SNOWFLAKE_DBT_PRIVATE_KEY: "PEM private key of dbt's service user (its public half is "
                               "cloud.snowflake.dbtUser.rsaPublicKey); required when dbt is enabled",
}
# Keys earlier versions took, with what replaced them, so an old stack file gets a useful error.
REMOVED_KEYS = {
    "s3SinkAccessKeyId": "the S3 sink now gets its own least-privilege key from the cloud layer; remove it",
    "s3SinkSecretAccessKey": "the S3 sink now gets its own least-privilege key from the cloud layer; remove it",
}


@dataclass(frozen=True)
class Secrets:
    """Secret inputs, kept as pulumi Outputs marked secret. Only what the enabled parts need is
    read (and required): a stack with Snowflake off needs no Snowflake keys."""

    snowflake_private_key: Optional[Any] = None
    snowflake_dbt_private_key: Optional[Any] = None


def _key_part(part: Any) -> str:
    # A map key from the stack file (a tag name) may hold anything; quoted, it cannot break the line.
    text = str(part)
    return text if re.fullmatch(r"[A-Za-z0-9_\[\]-]+", text) else json.dumps(text)


def _format_errors(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        path = ".".join(_key_part(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the configuration reference in README.md)"
        # Checks spanning sections (StackConfig's own) name their keys in the message.
        lines.append(f"{NAMESPACE}:{path}: {message}" if path else message)
    return lines


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the raw `datapipe:` namespace (key without prefix -> parsed value).

    Pure: no Pulumi runtime needed, so tests and tools can call it directly.
    """
    problems = [
        f"{NAMESPACE}:{key}: " + (REMOVED_KEYS.get(key)
                                  or f"unknown key; known keys are {', '.join(STRUCTURED_KEYS + SECRET_KEYS)}")
        for key in raw
        if key not in STRUCTURED_KEYS and key not in SECRET_KEYS
    ]
    structured = {key: value for key, value in raw.items() if key in STRUCTURED_KEYS}
    try:
        config = StackConfig.model_validate(structured)
    except ValidationError as error:
        problems.extend(_format_errors(error))
        config = None
    if problems or config is None:  # config is None only when the model itself reported problems
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))
    return config


def load_stack_config() -> tuple[StackConfig, Secrets]:
    """Read and validate the current stack's config; raises before any resource is registered."""
    import pulumi

    raw: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    # The language host hands config over in PULUMI_CONFIG; mocks set it in-process. Read both.
    from pulumi.runtime.config import CONFIG

    for full_key, value in {**pulumi.runtime.get_config_env(), **CONFIG.get()}.items():
        if full_key.startswith(prefix):
            raw[full_key[len(prefix):]] = value
    # The engine passes config values as strings; structured values are JSON.
    parsed = {key: _maybe_json(value) for key, value in raw.items() if key not in SECRET_KEYS}
    for key in SECRET_KEYS:
        if key in raw:
            parsed[key] = None  # presence is enough for the unknown-key check
    try:
        config = parse_stack_config(parsed)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None

    cfg = pulumi.Config(NAMESPACE)
    secrets = Secrets()
    if config.cloud.snowflake.enabled:
        secrets = Secrets(
            snowflake_private_key=cfg.require_secret(SNOWFLAKE_PRIVATE_KEY),
            snowflake_dbt_private_key=cfg.require_secret(SNOWFLAKE_DBT_PRIVATE_KEY) if config.dbt_enabled else None,
        )
    return config, secrets


def _maybe_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value
