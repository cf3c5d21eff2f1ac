"""What the batch layer runs, in memory and storage, from config alone.

One function serves the config check (before any resource exists), the layer's `memory` output
and the tests. It counts the Spark operator's pods from the same chart values the chart gets,
and one job of the default profile with Spark's memory overhead: the budget must leave room for
the job the platform is built to run, whether or not the smoke job is switched on."""

from __future__ import annotations

from typing import Optional

from components.batch import spark
from components.batch.config import BatchConfig
from components.batch.spark_operator import operator_pods, operator_values
from components.cloud.config import ObjectStoreConfig

LAYER = "batch"
DRIVER_SERVICE_ACCOUNT = "spark-driver"
EXECUTOR_SERVICE_ACCOUNT = "spark-executor"


def memory_allocation_mib(config: BatchConfig, object_store: Optional[ObjectStoreConfig],
                          dbt_enabled: bool) -> dict[str, int]:
    """Memory limit of everything the layer runs at once, replicas included (what the quota must hold)."""
    allocation: dict[str, int] = {}
    if config.spark_operator.enabled:
        values = operator_values(config.spark_operator, config.namespace, DRIVER_SERVICE_ACCOUNT, LAYER)
        for pod in operator_pods(values):
            allocation[pod.name] = pod.replicas * pod.memory_mib
    allocation["spark-history-server"] = config.history_server.memory_mib
    allocation["spark-driver"] = spark.pod_memory_mib(config.spark.driver)
    allocation["spark-executors"] = config.spark.executor.instances * spark.pod_memory_mib(config.spark.executor)
    if dbt_enabled:
        allocation["dbt"] = config.dbt.memory_mib
    if object_store is not None:
        allocation["object-store"] = object_store.memory_mib
    if config.monitoring.prometheus_memory_mib:
        allocation["prometheus"] = config.monitoring.prometheus_memory_mib
    return allocation


def storage_allocation_mib(config: BatchConfig, object_store: Optional[ObjectStoreConfig]) -> dict[str, int]:
    allocation = {}
    if config.history_server.event_log_dir is None:
        allocation["spark-history"] = config.history_server.storage_mib
    if object_store is not None:
        allocation["object-store"] = object_store.storage_mib
    return allocation
