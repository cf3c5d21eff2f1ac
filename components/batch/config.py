"""Configuration of the batch layer. Defaults reproduce the seed's deployed allocation: Spark driver
3Gi and 2 executors x 4Gi (plus Spark's memory overhead), History Server 1Gi with a 5Gi event-log
volume, dbt 1Gi, and the Spark operator's controller and webhook, inside an 18Gi budget."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.config_types import Image, NodePort, Strict
from components.ingestion.config import JvmService
from components.quantities import Mebibytes

NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class OperatorPodConfig(Strict):
    replicas: int = Field(1, ge=1, le=3)
    memory_mib: Mebibytes = Field(alias="memory")


class SparkOperatorConfig(Strict):
    """The kubeflow spark-operator Helm chart, pinned.

    By default the chart comes from `repository` at `version`. For air-gapped installs (and for
    render mode, which cannot reach a repository) set `chartPath` to a chart directory or a
    packaged `.tgz`; `repository` and `version` are then ignored."""

    enabled: bool = True
    chart: str = "spark-operator"
    version: str = Field("2.5.1", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    repository: str = Field("https://kubeflow.github.io/spark-operator", pattern=r"^(https?|oci)://")
    chart_path: Optional[str] = Field(None, min_length=1)
    # The chart composes registry/repository:tag, so a digest cannot be expressed: a tag is required.
    image: Image = "docker.io/kubeflow/spark-operator:2.5.1"
    # The chart leaves both unbounded; each spark-submit the controller runs is a JVM in its pod.
    controller: OperatorPodConfig = OperatorPodConfig(memory=512)
    webhook: OperatorPodConfig = OperatorPodConfig(memory=256)

    @field_validator("image")
    @classmethod
    def _tagged(cls, value: str) -> str:
        if "@" in value:
            raise ValueError("the chart builds the image as registry/repository:tag; pin a tag, not a digest")
        return value


class SparkRoleConfig(Strict):
    memory_mib: Mebibytes = Field(alias="memory")
    # Unset: Spark's own rule, max(384MiB, 10% of memory) for JVM jobs.
    memory_overhead_mib: Optional[Mebibytes] = Field(None, alias="memoryOverhead")
    cores: int = Field(1, ge=1)
    core_limit: Optional[str] = Field(None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")


class SparkExecutorConfig(SparkRoleConfig):
    instances: int = Field(2, ge=1)


class SmokeJobConfig(Strict):
    """The seed's validation job: SparkPi on the default profile, exercising the operator, the
    event log and the Iceberg/S3 settings end to end."""

    enabled: bool = False
    name: str = Field("spark-pi", pattern=NAMESPACE_PATTERN)
    slices: int = Field(100, ge=1)


ICEBERG = "1.9.2"


class SparkConfig(Strict):
    """The default job profile (SparkApplications and the spark-defaults ConfigMap)."""

    image: Image = "apache/spark:3.5.6"
    spark_version: str = Field("3.5.6", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    scala_version: Literal["2.12", "2.13"] = "2.12"
    driver: SparkRoleConfig = SparkRoleConfig(memory=3072, cores=1, core_limit="1500m")
    executor: SparkExecutorConfig = SparkExecutorConfig(memory=4096, cores=2, core_limit="2", instances=2)
    # Resolved by spark-submit from Maven Central at start. Versions follow the image: Spark 3.5's
    # Hadoop 3.3.4 client needs hadoop-aws 3.3.4 and the AWS SDK bundle it was built against.
    packages: tuple[str, ...] = (
        f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG}",
        "org.apache.hadoop:hadoop-aws:3.3.4",
        "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    )
    iceberg_catalog: str = Field("lake", pattern=r"^[a-z_][a-z0-9_]*$")
    ui_node_port: NodePort = 30040
    ui_host_port: int = Field(4040, ge=1, le=65535)
    smoke_job: SmokeJobConfig = SmokeJobConfig()


class HistoryServerConfig(JvmService):
    image: Image = "apache/spark:3.5.6"
    memory_mib: Mebibytes = Field(1024, alias="memory")
    storage_mib: Mebibytes = Field(5120, alias="storage")
    # Unset: the event logs live on the History Server's PVC (the seed's 5Gi volume). An s3a://
    # location frees jobs from the PVC's node (Kind's volumes are ReadWriteOnce).
    event_log_dir: Optional[str] = Field(None, pattern=r"^s3a://[a-z0-9][a-z0-9.-]+[a-z0-9](/.*)?$")
    retention_days: int = Field(7, ge=1)
    # Fetches the s3a filesystem jars from Maven Central when event logs are on s3a.
    download_image: Image = "curlimages/curl:8.11.1"
    node_port: NodePort = 30041
    host_port: int = Field(18080, ge=1, le=65535)
    default_heap_percent: ClassVar[int] = 50


class DbtConfig(Strict):
    # None: on exactly when Snowflake is on (dbt's only target).
    enabled: Optional[bool] = None
    image: Image = "ghcr.io/dbt-labs/dbt-snowflake:1.9.0"
    memory_mib: Mebibytes = Field(1024, alias="memory")
    schedule: str = Field("15 * * * *", pattern=r"^(\S+\s+){4}\S+$")
    # `dbt debug` proves the profile and credentials; bake a project into `image` and run e.g.
    # ["dbt", "build", "--project-dir", "/app"] for real transformations.
    command: tuple[str, ...] = Field(("dbt", "debug"), min_length=1)
    threads: int = Field(4, ge=1, le=64)


class BatchConfig(Strict):
    namespace: str = Field("batch-analytics", pattern=NAMESPACE_PATTERN)
    memory_budget_mib: Mebibytes = Field(18432, alias="memoryBudget")
    storage_budget_mib: Mebibytes = Field(17408, alias="storageBudget")
    # The host name clients on the host use (Kind maps the NodePorts to it; see kind/batch-cluster.yaml).
    external_host: str = "localhost"
    host_access_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    spark_operator: SparkOperatorConfig = SparkOperatorConfig()
    spark: SparkConfig = SparkConfig()
    history_server: HistoryServerConfig = HistoryServerConfig()
    dbt: DbtConfig = DbtConfig()

    @model_validator(mode="after")
    def _smoke_job_needs_the_operator(self):
        if self.spark.smoke_job.enabled and not self.spark_operator.enabled:
            raise ValueError("spark.smokeJob.enabled needs sparkOperator.enabled (only the operator runs "
                             "SparkApplications); switch the smoke job off or the operator on")
        return self
