"""The batch layer as one component: namespace guard rails, the Spark operator, the History Server,
the default Spark profile (and its smoke job), the dbt runner and, on stacks without AWS, the
in-cluster object store holding the buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components import kube
from components.batch import dbt, history_server, memory, spark, spark_operator
from components.batch.config import BatchConfig
from components.batch.dbt import DbtRunner, DbtRunnerArgs, DbtTarget
from components.batch.history_server import SparkHistoryServer, SparkHistoryServerArgs
from components.batch.memory import DRIVER_SERVICE_ACCOUNT, EXECUTOR_SERVICE_ACCOUNT, LAYER
from components.batch.spark_operator import SparkOperator, SparkOperatorArgs
from components.cloud import object_store
from components.cloud.access import LakeStorage, S3Endpoint
from components.cloud.config import ObjectStoreConfig
from components.cloud.object_store import ObjectStore, ObjectStoreArgs
from components.layer_namespace import ExternalEgress, Flow, LayerNamespace, LayerNamespaceArgs, RolePolicy

DRIVER, EXECUTOR = spark.DRIVER_APP, spark.EXECUTOR_APP
OPERATOR, HISTORY, DBT, STORE = spark_operator.APP, history_server.APP, dbt.APP, object_store.APP
# The Kubernetes API: 443 on the `kubernetes` Service, 6443 on Kind's API server behind it
# (NetworkPolicies may see either, depending on where the CNI evaluates them).
KUBE_API_PORTS = (443, 6443)
HTTPS = 443


def driver_rules() -> tuple[dict, ...]:
    """A Spark driver creates, watches and deletes its executors and their services, configmaps
    and volume claims (Spark on Kubernetes); nothing else, and only in the layer's namespace."""
    return ({"apiGroups": [""], "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
             "verbs": ["create", "get", "list", "watch", "update", "patch", "delete", "deletecollection"]},)


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
    # The dbt profile's target and the dbt user's private key, or None to run no dbt.
    dbt_target: Optional[pulumi.Output[DbtTarget]] = None
    dbt_private_key: Optional[pulumi.Input[str]] = None


class BatchLayer(pulumi.ComponentResource):
    endpoints: pulumi.Output[dict]
    storage: LakeStorage

    def __init__(self, name: str, args: BatchLayerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("datapipe:batch:BatchLayer", name, None, opts)
        cfg = args.config
        ns_name = cfg.namespace
        child = pulumi.ResourceOptions(parent=self)
        in_cluster_store = args.object_store is not None
        history_on_s3 = cfg.history_server.event_log_dir is not None
        dbt_enabled = args.dbt_target is not None
        self.namespace = LayerNamespace(f"{name}-namespace", LayerNamespaceArgs(
            namespace=ns_name, layer=LAYER,
            memory_budget_mib=cfg.memory_budget_mib, storage_budget_mib=cfg.storage_budget_mib,
            service_accounts=[DRIVER_SERVICE_ACCOUNT, EXECUTOR_SERVICE_ACCOUNT, HISTORY, DBT]
            + ([STORE] if in_cluster_store else []),
            flows=flows(in_cluster_store, history_on_s3),
            external_egress=external_egress(in_cluster_store, history_on_s3, dbt_enabled),
            host_cidrs=cfg.host_access_cidrs,
            api_roles=[RolePolicy(DRIVER_SERVICE_ACCOUNT, driver_rules())],
        ), child)
        ns = self.namespace.name

        if args.object_store is not None:
            self.object_store = ObjectStore(f"{name}-object-store", ObjectStoreArgs(
                config=args.object_store, namespace=ns, namespace_name=ns_name, layer=LAYER), child)
            storage = self.object_store.storage
        else:
            assert args.storage is not None, "the buckets live on AWS or in the object store"
            storage = args.storage
        self.storage = storage
        endpoint: S3Endpoint = storage.spark.endpoint

        # Spark's key, for drivers, executors and the History Server (env from this Secret).
        credentials = kube.create(name, kube.opaque_secret(
            kube.metadata(spark.CREDENTIALS_SECRET, ns, DRIVER, LAYER),
            {spark.ACCESS_KEY_ID: pulumi.Output.secret(storage.spark.access_key_id),
             spark.SECRET_ACCESS_KEY: pulumi.Output.secret(storage.spark.secret_access_key)},
        ), child)

        self.operator: Optional[SparkOperator] = None
        if cfg.spark_operator.enabled:
            self.operator = SparkOperator(f"{name}-spark-operator", SparkOperatorArgs(
                config=cfg.spark_operator, namespace=ns, namespace_name=ns_name, layer=LAYER,
                driver_service_account=DRIVER_SERVICE_ACCOUNT), child)

        self.history = SparkHistoryServer(f"{name}-spark-history", SparkHistoryServerArgs(
            config=cfg.history_server, spark=cfg.spark, namespace=ns, namespace_name=ns_name, layer=LAYER,
            external_host=cfg.external_host, endpoint=endpoint, depends_on=[credentials]), child)

        event_logs = self.history.event_log_dir
        conf = pulumi.Output.from_input(storage.lake_bucket).apply(
            lambda bucket: spark.spark_conf(cfg.spark, bucket, endpoint, event_logs))
        defaults = conf.apply(lambda c: spark.defaults_text(cfg.spark, c, ns_name, DRIVER_SERVICE_ACCOUNT,
                                                            self.history.claim))
        for manifest in spark.manifests(cfg.spark, ns_name, LAYER, defaults):
            manifest["metadata"]["namespace"] = ns
            kube.create(name, manifest, child)

        if cfg.spark.smoke_job.enabled:
            assert self.operator is not None  # BatchConfig rejects a smoke job without the operator
            app = spark.spark_application(cfg.spark, ns_name, LAYER, conf, EXECUTOR_SERVICE_ACCOUNT,
                                          DRIVER_SERVICE_ACCOUNT, self.history.claim, HISTORY)
            app["metadata"]["namespace"] = ns
            # The chart's CRDs must exist before the SparkApplication; the History Server's
            # volume and Spark's credentials before its pods.
            k8s.apiextensions.CustomResource(
                kube.resource_name(name, app), api_version=app["apiVersion"], kind=app["kind"],
                metadata=app["metadata"], spec=app["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.operator.chart, credentials, self.history]))

        if args.dbt_target is not None:
            assert args.dbt_private_key is not None
            DbtRunner(f"{name}-dbt", DbtRunnerArgs(
                config=cfg.dbt, namespace=ns, namespace_name=ns_name, layer=LAYER, target=args.dbt_target,
                private_key=args.dbt_private_key), child)

        host = cfg.external_host
        self.endpoints = pulumi.Output.from_input({
            "sparkHistory": self.history.external_url,
            "sparkHistoryInCluster": self.history.url,
            "sparkUi": f"http://{host}:{cfg.spark.ui_host_port}",
            "sparkDefaultsConfigMap": spark.DEFAULTS_CONFIG_MAP,
            "sparkEventLogDir": event_logs,
            "objectStoreInCluster": self.object_store.in_cluster_url if in_cluster_store else None,
        })
        allocation = memory.memory_allocation_mib(cfg, args.object_store, dbt_enabled)
        if self.operator is not None:
            # The same chart values the operator got: its pods are counted, not re-declared.
            assert {p.name: p.replicas * p.memory_mib for p in self.operator.pods}.items() <= allocation.items()
        self.memory = {"limitsMib": sum(allocation.values()), "budgetMib": cfg.memory_budget_mib,
                       "byServiceMib": allocation}
        self.register_outputs({"endpoints": self.endpoints, "memory": self.memory})
