"""Configuration of the batch layer. Defaults reproduce the allocation the product description
deployed: Spark driver 3Gi and 2 executors x 4Gi (plus Spark's memory overhead), History Server 1Gi
with a 5Gi event-log volume, dbt 1Gi, and the Spark operator's controller and webhook, inside an
18Gi budget."""

from __future__ import annotations

from typing import ClassVar, Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.config_types import NAMESPACE_PATTERN, Image, JvmService, LayerConfig, NodePort, Strict
from components.quantities import Mebibytes


class OperatorPodConfig(Strict):
    replicas: int = Field(1, ge=1, le=3, description="Pods of this Deployment")
    memory_mib: Mebibytes = Field(alias="memory", description="Memory request and limit of each pod, a size")


class SparkOperatorConfig(Strict):
    """The kubeflow spark-operator Helm chart, pinned.

    By default the chart comes from `repository` at `version`. For air-gapped installs (and for
    render mode, which cannot reach a repository) set `chartPath` to a chart directory or a
    packaged `.tgz`; `repository` and `version` are then ignored."""

    enabled: bool = Field(True, description="Install the operator; only it runs SparkApplications (the smoke job)")
    chart: str = Field("spark-operator", description="Chart name in the repository")
    version: str = Field("2.5.1", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$", description="Chart version (x.y.z)")
    repository: str = Field("https://kubeflow.github.io/spark-operator", pattern=r"^(https?|oci)://",
                            description="Chart repository URL (https:// or oci://)")
    chart_path: Optional[str] = Field(None, min_length=1,
                                      description="Local chart directory or packaged .tgz, for air-gapped installs "
                                                  "and render mode; repository and version are then ignored. "
                                                  "Unset: the chart comes from repository at version")
    # The chart composes registry/repository:tag, so a digest cannot be expressed: a tag is required.
    image: Image = Field("docker.io/kubeflow/spark-operator:2.5.1",
                         description="Operator image, pinned to a tag (the chart composes "
                                     "registry/repository:tag, so not a digest)")
    # The chart leaves both unbounded; each spark-submit the controller runs is a JVM in its pod.
    controller: OperatorPodConfig = Field(OperatorPodConfig(memory=512),
                                          description="The controller Deployment; each spark-submit it runs is a "
                                                      "JVM in its pod")
    webhook: OperatorPodConfig = Field(OperatorPodConfig(memory=256), description="The mutating webhook Deployment")

    @field_validator("image")
    @classmethod
    def _tagged(cls, value: str) -> str:
        if "@" in value:
            raise ValueError("the chart builds the image as registry/repository:tag; pin a tag, not a digest")
        return value


class SparkRoleConfig(Strict):
    memory_mib: Mebibytes = Field(alias="memory", description="JVM memory (`spark.driver.memory`, "
                                                              "`spark.executor.memory`), a size; the pod "
                                                              "also gets memoryOverhead")
    # Unset: Spark's own rule, max(384MiB, 10% of memory) for JVM jobs.
    memory_overhead_mib: Optional[Mebibytes] = Field(
        None, alias="memoryOverhead",
        description="Non-heap memory added to the pod, a size. Unset: Spark's own rule, max(384Mi, 10% of memory)")
    cores: int = Field(1, ge=1, description="CPU cores Spark schedules tasks on")
    core_limit: Optional[str] = Field(None, pattern=r"^[0-9]+(\.[0-9]+)?m?$",
                                      description="Pod CPU limit, a Kubernetes CPU quantity (e.g. 1500m). "
                                                  "Unset: no CPU limit")


class SparkExecutorConfig(SparkRoleConfig):
    instances: int = Field(2, ge=1, description="Executors per job")


class SmokeJobConfig(Strict):
    """The validation job of the product description: SparkPi on the default profile, exercising
    the operator, the event log and the Iceberg/S3 settings end to end."""

    enabled: bool = Field(False, description="Submit the SparkPi job as a SparkApplication (needs "
                                             "sparkOperator.enabled)")
    name: str = Field("spark-pi", pattern=NAMESPACE_PATTERN, description="Name of the SparkApplication")
    slices: int = Field(100, ge=1, description="SparkPi's argument: partitions the computation is split into")


ICEBERG = "1.9.2"


class SparkConfig(Strict):
    """The default job profile (SparkApplications and the spark-defaults ConfigMap)."""

    image: Image = Field("apache/spark:3.5.6", description="Spark image of drivers and executors, pinned to a "
                                                          "tag or digest")
    spark_version: str = Field("3.5.6", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
                               description="Spark version of the image (x.y.z)")
    scala_version: Literal["2.12", "2.13"] = Field("2.12", description="Scala version of the image")
    driver: SparkRoleConfig = Field(SparkRoleConfig(memory=3072, cores=1, core_limit="1500m"),
                                    description="The driver pod")
    executor: SparkExecutorConfig = Field(
        SparkExecutorConfig(memory=4096, cores=2, core_limit="2", instances=2), description="The executor pods")
    # Resolved by spark-submit from Maven Central at start. Versions follow the image: Spark 3.5's
    # Hadoop 3.3.4 client needs hadoop-aws 3.3.4 and the AWS SDK bundle it was built against.
    packages: tuple[str, ...] = Field(
        (
            f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{ICEBERG}",
            "org.apache.hadoop:hadoop-aws:3.3.4",
            "com.amazonaws:aws-java-sdk-bundle:1.12.262",
        ),
        description="Maven coordinates spark-submit resolves from Maven Central at start (spark.jars.packages); "
                    "their versions must match the image's Spark, Scala and Hadoop")
    iceberg_catalog: str = Field("lake", pattern=r"^[a-z_][a-z0-9_]*$",
                                 description="Name of the Iceberg catalog over the lake bucket")
    ui_node_port: NodePort = Field(30040, description="NodePort of the Spark UI of a running driver")
    ui_host_port: int = Field(4040, ge=1, le=65535, description="Host port Kind maps to uiNodePort "
                                                                "(kind/batch-cluster.yaml)")
    smoke_job: SmokeJobConfig = Field(SmokeJobConfig(), description="The SparkPi smoke job")


class HistoryServerConfig(JvmService):
    image: Image = Field("apache/spark:3.5.6", description="Spark image the History Server runs from, pinned to a "
                                                          "tag or digest")
    memory_mib: Mebibytes = Field(1024, alias="memory", description="Container memory request and limit, a size")
    storage_mib: Mebibytes = Field(5120, alias="storage", description="Size of the event-log volume claim (only "
                                                                      "when eventLogDir is unset)")
    # Unset: the event logs live on the History Server's PVC (the product description's 5Gi volume). An s3a://
    # location frees jobs from the PVC's node (Kind's volumes are ReadWriteOnce).
    event_log_dir: Optional[str] = Field(
        None, pattern=r"^s3a://[a-z0-9][a-z0-9.-]+[a-z0-9](/.*)?$",
        description="s3a:// location of the event logs, in the lake or raw bucket; frees jobs from the volume's "
                    "node. Unset: the event logs live on the History Server's volume claim")
    retention_days: int = Field(7, ge=1, description="Days event logs are kept before the History Server cleans "
                                                     "them up")
    # Fetches the s3a filesystem jars from Maven Central when event logs are on s3a.
    download_image: Image = Field("curlimages/curl:8.11.1",
                                  description="Image of the init container that fetches the s3a jars from Maven "
                                              "Central when eventLogDir is set")
    node_port: NodePort = Field(30041, description="NodePort of the History Server UI")
    host_port: int = Field(18080, ge=1, le=65535, description="Host port Kind maps to nodePort "
                                                              "(kind/batch-cluster.yaml)")
    default_heap_percent: ClassVar[int] = 50


class DbtConfig(Strict):
    # None: on exactly when Snowflake is on (dbt's only target).
    enabled: Optional[bool] = Field(None, description="Run dbt on a schedule. Unset: on exactly when "
                                                      "cloud.snowflake.enabled (dbt's only target)")
    image: Image = Field("ghcr.io/dbt-labs/dbt-snowflake:1.9.0", description="dbt image, pinned to a tag or digest")
    memory_mib: Mebibytes = Field(1024, alias="memory", description="Container memory request and limit, a size")
    schedule: str = Field("15 * * * *", pattern=r"^(\S+\s+){4}\S+$",
                          description="Cron schedule of the dbt CronJob (five fields)")
    # `dbt debug` proves the profile and credentials; bake a project into `image` and run e.g.
    # ["dbt", "build", "--project-dir", "/app"] for real transformations.
    command: tuple[str, ...] = Field(("dbt", "debug"), min_length=1,
                                     description="Command the job runs; the default proves the profile and "
                                                 "credentials. Bake a project into image and run e.g. "
                                                 "[dbt, build, --project-dir, /app]")
    threads: int = Field(4, ge=1, le=64, description="dbt threads (profiles.yml)")


class BatchConfig(LayerConfig):
    namespace: str = Field("batch-analytics", pattern=NAMESPACE_PATTERN,
                           description="Kubernetes namespace of the layer, created by the program")
    memory_budget_mib: Mebibytes = Field(18432, alias="memoryBudget",
                                         description="Memory the layer may use, a size: the namespace's "
                                                     "ResourceQuota; the limits of everything the layer runs at "
                                                     "once (Spark pods with their overhead, the operator, the "
                                                     "object store) must fit in it")
    storage_budget_mib: Mebibytes = Field(17408, alias="storageBudget",
                                          description="Storage the layer may claim, a size: the namespace's "
                                                      "ResourceQuota; the volume claims must fit in it")
    # The host name clients on the host use (Kind maps the NodePorts to it; see kind/batch-cluster.yaml).
    external_host: str = Field("localhost", description="Host name clients on the host use in the batchEndpoints "
                                                        "output (Kind maps the NodePorts to it; see "
                                                        "kind/batch-cluster.yaml)")
    host_access_cidrs: tuple[str, ...] = Field(("0.0.0.0/0",), description="Source CIDRs the NetworkPolicies let "
                                                                            "reach the NodePorts; narrow this "
                                                                            "outside local development")
    spark_operator: SparkOperatorConfig = Field(SparkOperatorConfig(), description="The Spark operator's Helm chart")
    spark: SparkConfig = Field(SparkConfig(), description="The default Spark job profile")
    history_server: HistoryServerConfig = Field(HistoryServerConfig(), description="The Spark History Server")
    dbt: DbtConfig = Field(DbtConfig(), description="The scheduled dbt runner")

    # Wording of the layer checks (LayerConfig), which StackConfig runs: they need the cloud section.
    memory_budget_note: ClassVar[str] = "; Spark pods include their memory overhead"
    memory_budget_remedy: ClassVar[str] = "lower a service's memory, the executor count, or raise batch.memoryBudget"
    itemize_storage: ClassVar[bool] = True
    node_port_scope: ClassVar[str] = " on the batch cluster"

    @model_validator(mode="after")
    def _smoke_job_needs_the_operator(self):
        if self.spark.smoke_job.enabled and not self.spark_operator.enabled:
            raise ValueError("spark.smokeJob.enabled needs sparkOperator.enabled (only the operator runs "
                             "SparkApplications); switch the smoke job off or the operator on")
        return self
