"""The batch budget from config alone: Spark pods with their overhead, the operator's pods."""

from components.batch import memory
from components.batch.config import BatchConfig
from components.cloud.config import ObjectStoreConfig

PRODUCT_DESCRIPTION_SIZES = {
    "spark-operator-controller": 512,
    "spark-operator-webhook": 256,
    "spark-history-server": 1024,
    "spark-driver": 3072 + 384,  # Spark's minimum overhead
    "spark-executors": 2 * (4096 + 409),  # 10% overhead, truncated like Spark
    "dbt": 1024,
    # Not in the product description: the layer's Prometheus (monitoring.prometheus).
    "prometheus": 512,
}


def test_product_description_sizes_fit_18gi():
    allocation = memory.memory_allocation_mib(BatchConfig(), None, dbt_enabled=True)
    assert allocation == PRODUCT_DESCRIPTION_SIZES
    assert sum(allocation.values()) == 15794 <= 18 * 1024


def test_in_cluster_store_counts_and_operator_can_be_left_out():
    config = BatchConfig(spark_operator={"enabled": False})
    allocation = memory.memory_allocation_mib(config, ObjectStoreConfig(), dbt_enabled=False)
    assert "spark-operator-controller" not in allocation and allocation["object-store"] == 512
    assert memory.storage_allocation_mib(config, ObjectStoreConfig()) == {"spark-history": 5120, "object-store": 10240}


def test_s3a_event_logs_need_no_claim():
    config = BatchConfig(history_server={"eventLogDir": "s3a://datapipe-lake/spark-events"})
    assert memory.storage_allocation_mib(config, None) == {}
