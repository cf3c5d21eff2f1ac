"""The batch layer as one component: namespace guard rails, the Spark operator, the History Server,
the default Spark profile (and its smoke job), the dbt runner and, on stacks without AWS, the
in-cluster object store holding the buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.batch import dbt, history_server, memory, spark, spark_operator
from components.batch.config import BatchConfig
from components.batch.dbt import DbtRunner, DbtRunnerArgs, DbtTarget
from components.batch.history_server import SparkHistoryServer, SparkHistoryServerArgs
from components.batch.memory import DRIVER_SERVICE_ACCOUNT, EXECUTOR_SERVICE_ACCOUNT, LAYER
from components.batch.spark_operator import SparkOperator, SparkOperatorArgs
from components.cloud import object_store
from components.cloud.access import LakeStorage
from components.cloud.config import ObjectStoreConfig
from components.cloud.object_store import ObjectStore, ObjectStoreArgs
from components.layer_component import MovedFrom
from components.layer_namespace import ExternalEgress, Flow, LayerNamespace, LayerNamespaceArgs, RolePolicy
from components.observability import alerts, jmx, scraping
from components.observability.monitoring import LayerMonitoring, LayerMonitoringArgs

DRIVER, EXECUTOR = spark.DRIVER_APP, spark.EXECUTOR_APP
OPERATOR, HISTORY, DBT, STORE = spark_operator.APP, history_server.APP, dbt.APP, object_store.APP
KUBE_API_PORTS = scraping.API_PORTS
HTTPS = 443


def driver_rules() -> tuple[dict, ...]:
    """A Spark driver creates, watches and deletes its executors and their services, configmaps
    and volume claims (Spark on Kubernetes); nothing else, and only in the layer's namespace."""
    return ({"apiGroups": [""], "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
             "verbs": ["create", "get", "list", "watch", "update", "patch", "delete", "deletecollection"]},)


# The History Server's JMX agent; the drivers' own metrics on their UI port (PrometheusServlet).
METRICS_PORTS = {HISTORY: jmx.PORT, DRIVER: spark.UI_PORT}


def flows(in_cluster_store: bool, history_on_s3: bool) -> list[Flow]:
    """Every connection the layer makes; everything else is denied."""
    declared = [
        Flow(EXECUTOR, DRIVER, (spark.DRIVER_PORT, spark.BLOCK_MANAGER_PORT)),
        Flow(DRIVER, EXECUTOR, (spark.BLOCK_MANAGER_PORT,)),
        # Shuffle blocks are fetched executor to executor.
        Flow(EXECUTOR, EXECUTOR, (spark.BLOCK_MANAGER_PORT,)),
        # The API server calls the operator's admission webhook from the control-plane node.
        Flow(None, OPERATOR, (spark_operator.WEBHOOK_PORT,)),
        Flow(None, DRIVER, (spark.UI_PORT,)),
        Flow(None, HISTORY, (history_server.PORT,)),
    ]
    if in_cluster_store:
        declared += [Flow(DRIVER, STORE, (object_store.S3_PORT,)), Flow(EXECUTOR, STORE, (object_store.S3_PORT,)),
                     # The ingestion cluster's S3 sink arrives through the NodePort, i.e. from a node.
                     Flow(None, STORE, (object_store.S3_PORT,))]
        if history_on_s3:
            declared.append(Flow(HISTORY, STORE, (object_store.S3_PORT,)))
    return declared


def external_egress(in_cluster_store: bool, history_on_s3: bool, dbt_enabled: bool) -> list[ExternalEgress]:
    egress = [
        ExternalEgress(OPERATOR, KUBE_API_PORTS),
        # The driver talks to the API server, fetches spark.jars.packages from Maven Central and,
        # on AWS, reaches S3 over HTTPS.
        ExternalEgress(DRIVER, KUBE_API_PORTS),
    ]
    if not in_cluster_store:
        egress.append(ExternalEgress(EXECUTOR, (HTTPS,)))
    if history_on_s3:
        # Maven Central for the s3a jars, and S3 itself on AWS.
        egress.append(ExternalEgress(HISTORY, (HTTPS,)))
    if dbt_enabled:
        egress.append(ExternalEgress(DBT, (HTTPS,)))
    return egress


@dataclass
class BatchLayerArgs:
    config: BatchConfig
    # The buckets on AWS, or None to run the in-cluster object store configured below.
    storage: Optional[LakeStorage]
    object_store: Optional[ObjectStoreConfig]
    # The dbt runner's Snowflake target and private key, or None to run no dbt.
    dbt: Optional[DbtAccess] = None


@dataclass(frozen=True)
class DbtAccess:
    target: pulumi.Output[DbtTarget]
    private_key: pulumi.Input[str]


class BatchLayer(pulumi.ComponentResource):
    endpoints: pulumi.Output[dict]
    memory: pulumi.Output[dict]
    # The buckets and each client's key (AWS's, or the in-cluster store's): the ingestion layer's input.
    storage: LakeStorage

    def __init__(self, name: str, args: BatchLayerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:batch:BatchLayer", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        history_on_s3 = cfg.history_server.event_log_dir is not None
        in_cluster_store = args.object_store is not None
        if in_cluster_store == (args.storage is not None):
            raise ValueError("BatchLayerArgs: give either the AWS buckets (storage) or an object_store config")
        self.namespace = LayerNamespace(f"{name}-namespace", LayerNamespaceArgs(
            namespace=cfg.namespace, layer=LAYER, external_host=cfg.external_host,
            memory_budget_mib=cfg.memory_budget_mib, storage_budget_mib=cfg.storage_budget_mib,
            service_accounts=[DRIVER_SERVICE_ACCOUNT, EXECUTOR_SERVICE_ACCOUNT, HISTORY, DBT]
            + ([STORE] if in_cluster_store else []) + scraping.service_accounts(cfg.monitoring),
            flows=flows(in_cluster_store, history_on_s3) + scraping.metrics_flows(cfg.monitoring, METRICS_PORTS),
            external_egress=external_egress(in_cluster_store, history_on_s3, args.dbt is not None)
            + scraping.api_egress(cfg.monitoring),
            host_cidrs=cfg.host_access_cidrs,
            api_roles=[RolePolicy(DRIVER_SERVICE_ACCOUNT, driver_rules()), *scraping.api_roles(cfg.monitoring)],
        ), child)
        layer = self.namespace.layer

        object_store_url = None
        storage = args.storage
        if args.object_store is not None:
            store = ObjectStore(f"{name}-object-store", ObjectStoreArgs(config=args.object_store, layer=layer), child)
            storage, object_store_url = store.storage, store.in_cluster_url
        self.storage = storage

        # These resources were the layer's own children before the profile and the job had components.
        moved = MovedFrom(prefix=name, parent=self)
        history_claim = history_server.event_log_claim(cfg.history_server)
        event_log_dir = spark.event_log_dir(cfg.history_server.event_log_dir)
        profile = spark.SparkProfile(f"{name}-spark-profile", spark.SparkProfileArgs(
            config=cfg.spark, layer=layer, storage=storage, event_log_dir=event_log_dir,
            history_claim=history_claim, driver_service_account=DRIVER_SERVICE_ACCOUNT), child, moved)

        operator = None
        if cfg.spark_operator.enabled:
            operator = SparkOperator(f"{name}-spark-operator", SparkOperatorArgs(
                config=cfg.spark_operator, layer=layer, driver_service_account=DRIVER_SERVICE_ACCOUNT), child)

        history = SparkHistoryServer(f"{name}-spark-history", SparkHistoryServerArgs(
            config=cfg.history_server, spark=cfg.spark, layer=layer, endpoint=storage.spark.endpoint,
            credentials=profile.credentials, jmx_exporter=cfg.monitoring.jmx_exporter), child)

        # BatchConfig refuses a smoke job without the operator, whose CRDs the job needs.
        if cfg.spark.smoke_job.enabled and operator is not None:
            spark.SparkSmokeJob(f"{name}-spark-smoke-job", spark.SparkSmokeJobArgs(
                config=cfg.spark, layer=layer, profile=profile, operator_chart=operator.chart, history=history,
                history_claim=history_claim, history_app=HISTORY, driver_service_account=DRIVER_SERVICE_ACCOUNT,
                executor_service_account=EXECUTOR_SERVICE_ACCOUNT), child, moved)

        if args.dbt is not None:
            DbtRunner(f"{name}-dbt", DbtRunnerArgs(
                config=cfg.dbt, layer=layer, target=args.dbt.target, private_key=args.dbt.private_key), child)

        allocation = memory.memory_allocation_mib(cfg, args.object_store, args.dbt is not None)
        monitoring = LayerMonitoring(f"{name}-monitoring", LayerMonitoringArgs(
            config=cfg.monitoring, layer=layer, groups=alerts.batch_groups(
                cfg.namespace, {HISTORY: cfg.history_server.memory_mib}, sum(allocation.values()),
                cfg.memory_budget_mib)), child)

        self.endpoints = pulumi.Output.from_input({
            "prometheusInCluster": monitoring.url,
            "sparkHistory": history.external_url,
            "sparkHistoryInCluster": history.url,
            "sparkUi": layer.external_url(cfg.spark.ui_host_port),
            "sparkDefaultsConfigMap": profile.defaults_config_map,
            "sparkEventLogDir": history.event_log_dir,
            "objectStoreInCluster": object_store_url,
        })
        self.memory = pulumi.Output.from_input({"limitsMib": sum(allocation.values()),
                                                "budgetMib": cfg.memory_budget_mib, "byServiceMib": allocation})
        self.register_outputs({"endpoints": self.endpoints, "memory": self.memory,
                               "rawBucket": storage.raw_bucket, "lakeBucket": storage.lake_bucket})
