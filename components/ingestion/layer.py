"""The ingestion layer as one component: namespace guard rails, then Postgres, Kafka, Schema
Registry and Kafka Connect, each fed the others' Outputs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlparse
from typing import Optional

import pulumi

from components.cloud.access import S3Client, S3Endpoint
from components.ingestion import connectors, kafka_connect, postgres, schema_registry, topics as topic_names
from components.ingestion.config import IngestionConfig
from components.ingestion.kafka import (CONTROLLER_PORT, EXTERNAL_PORT, INTERNAL_PORT, KafkaCluster,
                                        KafkaClusterArgs)
from components.ingestion.kafka_connect import KafkaConnect, KafkaConnectArgs
from components.ingestion.postgres import PostgresCdc, PostgresCdcArgs
from components.ingestion.schema_registry import SchemaRegistry, SchemaRegistryArgs
from components.ingestion import access
from components.layer_component import Issuer
from components.config_types import PRIVATE_NETWORKS
from components.layer_namespace import ExternalEgress, Flow, LayerNamespace, LayerNamespaceArgs
from components.observability import alerts, jmx, postgres_exporter, scraping
from components.observability.monitoring import LayerMonitoring, LayerMonitoringArgs

LAYER = "ingestion"
KAFKA, POSTGRES, REGISTRY, CONNECT = "kafka", postgres.APP, schema_registry.APP, kafka_connect.APP
# Each app's metrics port: the JMX agent in the JVMs, the exporter beside PostgreSQL.
METRICS_PORTS = {KAFKA: jmx.PORT, CONNECT: jmx.PORT, REGISTRY: jmx.PORT, POSTGRES: postgres_exporter.PORT}


def flows(expose_connect_rest: bool = False) -> list[Flow]:
    """Every connection the pipeline makes; everything else is denied. Connect's REST API takes
    host traffic only when the config exposes it."""
    return [
        Flow(KAFKA, KAFKA, (INTERNAL_PORT, CONTROLLER_PORT)),
        Flow(REGISTRY, KAFKA, (INTERNAL_PORT,)),
        Flow(CONNECT, KAFKA, (INTERNAL_PORT,)),
        Flow(CONNECT, REGISTRY, (schema_registry.PORT,)),
        Flow(CONNECT, POSTGRES, (postgres.PORT,)),
        # Distributed workers forward REST calls to the leader.
        Flow(CONNECT, CONNECT, (kafka_connect.PORT,)),
        Flow(None, POSTGRES, (postgres.PORT,)),
        Flow(None, KAFKA, (EXTERNAL_PORT,)),
        Flow(None, REGISTRY, (schema_registry.PORT,)),
        *([Flow(None, CONNECT, (kafka_connect.PORT,))] if expose_connect_rest else []),
    ]


# Never reachable from Connect on the public-internet rule: private networks (the cluster's own
# and its neighbours'), link-local (cloud instance metadata: 169.254.169.254), loopback, CGNAT.
NON_PUBLIC = (*PRIVATE_NETWORKS, "169.254.0.0/16", "127.0.0.0/8", "100.64.0.0/10")


def external_egress(s3: S3Endpoint) -> list[ExternalEgress]:
    """Connect's only ways out of the cluster: HTTPS to public addresses (its plugin downloads, and
    AWS S3, whose addresses are not fixed), and the configured S3-compatible endpoint's port on
    that endpoint's address (its /32 when the URL names an IP, else the private networks, where
    the batch cluster's in-cluster store is). A connector created through the REST API cannot
    send the worker's secrets to another host of the private network, nor to the metadata service."""
    rules = [ExternalEgress(CONNECT, (443,), excluded=NON_PUBLIC)]
    if s3.url is not None:
        host = urlparse(s3.url).hostname or ""
        try:
            rules.append(ExternalEgress(CONNECT, (s3.port,), cidr=f"{ipaddress.IPv4Address(host)}/32"))
        except ValueError:
            rules += [ExternalEgress(CONNECT, (s3.port,), cidr=cidr) for cidr in PRIVATE_NETWORKS]
    return rules


def alert_groups(cfg: IngestionConfig) -> list[dict]:
    return alerts.ingestion_groups(cfg.namespace, cfg.postgres.slot_name, cfg.postgres.max_slot_wal_keep_size_mib,
                                   (connectors.SOURCE_NAME, connectors.SINK_NAME), topic_names.DLQ_TOPIC,
                                   container_limits_mib(cfg), sum(cfg.memory_allocation_mib().values()),
                                   cfg.memory_budget_mib)


def container_limits_mib(cfg: IngestionConfig) -> dict[str, int]:
    """Each JVM app's container limit (per pod), which the memory alerts compare its RSS with."""
    return {KAFKA: cfg.kafka.memory_mib, CONNECT: cfg.kafka_connect.memory_mib, REGISTRY: cfg.schema_registry.memory_mib}


@dataclass
class IngestionLayerArgs:
    config: IngestionConfig
    kafka_cluster_id: str
    # The raw archive bucket and the S3 sink's own key (from the cloud or batch layer).
    raw_bucket: pulumi.Input[str]
    s3: S3Client
    # The stack's CA: every service's certificate is issued by it.
    issuer: Issuer


class IngestionLayer(pulumi.ComponentResource):
    endpoints: pulumi.Output[dict]
    credentials: pulumi.Output[dict]
    memory: pulumi.Output[dict]

    def __init__(self, name: str, args: IngestionLayerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:ingestion:IngestionLayer", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        monitoring = cfg.monitoring
        self.namespace = LayerNamespace(f"{name}-namespace", LayerNamespaceArgs(
            namespace=cfg.namespace, layer=LAYER, external_host=cfg.external_host,
            memory_budget_mib=cfg.memory_budget_mib, storage_budget_mib=cfg.storage_budget_mib,
            service_accounts=[POSTGRES, KAFKA, REGISTRY, CONNECT, *scraping.service_accounts(monitoring)],
            flows=flows(cfg.kafka_connect.expose_rest) + scraping.metrics_flows(monitoring, METRICS_PORTS),
            external_egress=external_egress(args.s3.endpoint) + scraping.api_egress(monitoring),
            host_cidrs=cfg.host_access_cidrs, api_roles=scraping.api_roles(monitoring),
        ), child)
        layer = self.namespace.layer

        self.postgres = PostgresCdc(f"{name}-postgres", PostgresCdcArgs(
            config=cfg.postgres, topics=cfg.topics, layer=layer, issuer=args.issuer,
            exporter=monitoring.postgres_exporter), child)
        self.kafka = KafkaCluster(f"{name}-kafka", KafkaClusterArgs(
            config=cfg.kafka, topics=cfg.topics, layer=layer, cluster_id=args.kafka_cluster_id,
            issuer=args.issuer, jmx_exporter=monitoring.jmx_exporter), child)
        self.schema_registry = SchemaRegistry(f"{name}-schema-registry", SchemaRegistryArgs(
            config=cfg.schema_registry, layer=layer, kafka=self.kafka,
            replication_factor=cfg.topics.replication_factor, issuer=args.issuer,
            jmx_exporter=monitoring.jmx_exporter), child)
        self.kafka_connect = KafkaConnect(f"{name}-kafka-connect", KafkaConnectArgs(
            config=cfg.kafka_connect, postgres=cfg.postgres, topics=cfg.topics, sink=cfg.s3_sink, layer=layer,
            kafka=self.kafka, registry=self.schema_registry, database=self.postgres,
            raw_bucket=args.raw_bucket, s3=args.s3, ca=args.issuer.ca, jmx_exporter=monitoring.jmx_exporter,
        ), child)
        self.monitoring = LayerMonitoring(f"{name}-monitoring", LayerMonitoringArgs(
            config=monitoring, layer=layer, groups=alert_groups(cfg)), child)

        host = cfg.external_host
        exposed = {"kafkaConnect": self.kafka_connect.external_url} if cfg.kafka_connect.expose_rest else {}
        self.endpoints = pulumi.Output.from_input({
            "postgres": f"{host}:{cfg.postgres.host_port}",
            "postgresInCluster": self.postgres.host.apply(lambda h: f"{h}:{postgres.PORT}"),
            "database": self.postgres.database,
            "kafkaBootstrap": self.kafka.external_bootstrap_servers,
            "kafkaBootstrapInCluster": self.kafka.bootstrap_servers,
            "schemaRegistry": self.schema_registry.external_url,
            "schemaRegistryInCluster": self.schema_registry.url,
            **exposed,
            "kafkaConnectInCluster": self.kafka_connect.url,
            "connectors": self.kafka_connect.connector_names,
            "prometheusInCluster": self.monitoring.url,
            # Every endpoint is TLS with a certificate of this CA (public: trust it, e.g. ssl.ca.location).
            "caCertificate": args.issuer.ca.cert_pem,
        })
        self.credentials = pulumi.Output.secret({
            "postgresAdminUser": postgres.ADMIN_USER,
            "postgresAdminPassword": self.postgres.admin_password,
            "postgresCdcUser": self.postgres.cdc_user,
            "postgresCdcPassword": self.postgres.cdc_password,
            "schemaRegistryUser": self.schema_registry.admin_user,
            "schemaRegistryPassword": self.schema_registry.admin_password,
            # Kafka (SASL_SSL, SCRAM-SHA-512): read-only on the CDC topics, groups datapipe-reader-*.
            "kafkaReaderUser": access.READER,
            "kafkaReaderPassword": self.kafka.passwords[access.READER],
            "kafkaConnectRestUser": kafka_connect.REST_USER,
            "kafkaConnectRestPassword": self.kafka_connect.rest_password,
        })
        allocation = cfg.memory_allocation_mib()
        self.memory = pulumi.Output.from_input({"limitsMib": sum(allocation.values()),
                                                "budgetMib": cfg.memory_budget_mib, "byServiceMib": allocation})
        self.register_outputs({"endpoints": self.endpoints, "credentials": self.credentials, "memory": self.memory})
