"""Configuration of the batch layer. Defaults reproduce the allocation the product description
deployed: Spark driver 3Gi and 2 executors x 4Gi (plus Spark's memory overhead), History Server 1Gi
with a 5Gi event-log volume, dbt 1Gi, and the Spark operator's controller and webhook, inside an
18Gi budget."""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, ClassVar, Literal, Optional

from pydantic import AfterValidator, Field, field_validator, model_validator

from components.observability.config import MonitoringConfig, PrometheusConfig

from components.config_types import (INT32_MAX, INT64_MAX, Image, JvmService, LayerConfig, LocalPath,
                                     Mebibytes, Namespace, NodePort, Strict, check_dns_label, check_host_name)

# --- grammars of the batch layer's values ----------------------------------------------------------


def _url(value: str, schemes: tuple[str, ...]) -> str:
    """An absolute URL of one of `schemes` with a host name, no credentials or fragment, and
    only RFC 3986 characters (no whitespace, quotes or backslashes)."""
    if not re.fullmatch(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+", value):
        raise ValueError(f"{value!r} is not a URL: it has characters a URL cannot hold (whitespace, quotes, "
                         "backslashes, non-ASCII)")
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"{value!r} is not a {' or '.join(s + '://' for s in schemes)} URL")
    if "@" in parts.netloc or parts.fragment:
        raise ValueError(f"{value!r} has credentials or a fragment; name the repository only")
    host, _, port = parts.netloc.partition(":")
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"{value!r} has an invalid port")
    check_host_name(host)
    return value


def _chart_repository(value: str) -> str:
    return _url(value, ("https", "http", "oci"))


def _maven_coordinate(value: str) -> str:
    # group:artifact:version, each part a name Maven accepts in a repository path. No '..'
    # (a path step in the jar's URL) and no ',' (spark.jars.packages separates coordinates by it).
    part = r"[A-Za-z0-9_](?:[A-Za-z0-9_.+-]*[A-Za-z0-9_+])?"
    if not re.fullmatch(rf"{part}:{part}:{part}", value) or ".." in value:
        raise ValueError(f"{value!r} is not a Maven coordinate group:artifact:version (letters, digits, "
                         "'_', '.', '-', '+'; no '..')")
    return value


def _event_log_dir(value: str) -> str:
    # s3a://<bucket>[/<key prefix>]: the bucket's grammar is checked against the buckets
    # themselves (StackConfig), the key prefix here. It reaches JVM flags and spark-defaults.
    match = re.fullmatch(r"s3a://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/[A-Za-z0-9_.=+-]+)*/?", value)
    if match is None or any(step in (".", "..") for step in value[len("s3a://"):].split("/")[1:]):
        raise ValueError(f"{value!r} is not an s3a:// location: s3a://<bucket>/<prefix>, the prefix of "
                         "letters, digits and '_.=+-' between slashes (no . or .. steps)")
    return value


def _spark_application_name(value: str) -> str:
    # The operator names the driver's UI Service <name>-ui-svc, which must be a DNS label too.
    check_dns_label(value)
    if len(value + "-ui-svc") > 63:
        raise ValueError(f"{value!r} is too long: the Spark operator names a Service {value}-ui-svc, "
                         "which must stay within 63 characters")
    return value


_CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
                ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                  "dec")),
                ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
# The descriptors Kubernetes' cron parser (robfig/cron, standard) takes besides five fields.
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...], offset: int) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + offset
    if not re.fullmatch(r"[0-9]{1,2}", text) or not low <= int(text) <= high:
        raise ValueError(text)
    return int(text)


def _cron_field(text: str, low: int, high: int, names: tuple[str, ...], wildcard_ok: tuple[str, ...]) -> None:
    offset = low  # names count from the field's first value: jan = 1, sun = 0
    for item in text.split(","):
        span, _, step = item.partition("/")
        if step and (not re.fullmatch(r"[0-9]{1,2}", step) or not 1 <= int(step) <= high - low + 1):
            raise ValueError(item)
        if span in wildcard_ok:
            continue
        start, dash, end = span.partition("-")
        first = _cron_value(start, low, high, names, offset)
        if dash and _cron_value(end, low, high, names, offset) < first:
            raise ValueError(item)


def _cron(value: str) -> str:
    """A Kubernetes CronJob schedule: five fields (minute hour day-of-month month day-of-week) of
    values, ranges, lists, steps and names in their ranges, or one of the @ descriptors."""
    if value in CRON_DESCRIPTORS:
        return value
    fields = [field for field in value.split(" ") if field]
    if len(fields) != 5 or not re.fullmatch(r"[ -~]+", value):
        raise ValueError(f"{value!r} is not a cron schedule: five fields separated by spaces (minute "
                         "hour day-of-month month day-of-week), e.g. '15 * * * *', or one of "
                         + ", ".join(CRON_DESCRIPTORS))
    for text, (what, low, high, names) in zip(fields, _CRON_FIELDS):
        try:
            _cron_field(text, low, high, names, ("*", "?") if what.startswith("day of") else ("*",))
        except ValueError:
            raise ValueError(f"{value!r}: the {what} field {text!r} is not a value, range, list or step within "
                             f"{low}-{high}" + (f" (or {names[0]}-{names[-1]})" if names else "")) from None
    return value


def _argv_word(value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{value!r} contains a NUL character, which a process argument cannot hold")
    return value


ChartRepository = Annotated[str, AfterValidator(_chart_repository)]
MavenCoordinate = Annotated[str, AfterValidator(_maven_coordinate)]
EventLogDir = Annotated[str, AfterValidator(_event_log_dir)]
SparkApplicationName = Annotated[str, AfterValidator(_spark_application_name)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
ArgvWord = Annotated[str, AfterValidator(_argv_word)]


class OperatorPodConfig(Strict):
    replicas: int = Field(1, ge=1, le=3, description="Pods of this Deployment")
    memory_mib: Mebibytes = Field(alias="memory", description="Memory request and limit of each pod, a size")


class SparkOperatorConfig(Strict):
    """The kubeflow spark-operator Helm chart, pinned.

    By default the chart comes from `repository` at `version`. For air-gapped installs (and for
    render mode, which cannot reach a repository) set `chartPath` to a chart directory or a
    packaged `.tgz`; `repository` and `version` are then ignored."""

    enabled: bool = Field(True, description="Install the operator; only it runs SparkApplications (the smoke job)")
    chart: str = Field("spark-operator", pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$",
                       description="Chart name in the repository (lower-case letters, digits, '.', '_', '-')")
    version: str = Field("2.5.1", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$", description="Chart version (x.y.z)")
    repository: ChartRepository = Field("https://kubeflow.github.io/spark-operator",
                                        description="Chart repository URL (https:// or oci://, a host name, no "
                                                    "credentials)")
    chart_path: Optional[LocalPath] = Field(None,
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
    cores: int = Field(1, ge=1, le=INT32_MAX, description="CPU cores Spark schedules tasks on")
    core_limit: Optional[str] = Field(None, pattern=r"^[0-9]+(\.[0-9]+)?m?$",
                                      description="Pod CPU limit, a Kubernetes CPU quantity (e.g. 1500m). "
                                                  "Unset: no CPU limit")


class SparkExecutorConfig(SparkRoleConfig):
    instances: int = Field(2, ge=1, le=INT32_MAX, description="Executors per job")


class SmokeJobConfig(Strict):
    """The validation job of the product description: SparkPi on the default profile, exercising
    the operator, the event log and the Iceberg/S3 settings end to end."""

    enabled: bool = Field(False, description="Submit the SparkPi job as a SparkApplication (needs "
                                             "sparkOperator.enabled)")
    name: SparkApplicationName = Field("spark-pi", description="Name of the SparkApplication (a DNS-1123 label of "
                                                               "at most 56 characters: the operator appends "
                                                               "-ui-svc)")
    slices: int = Field(100, ge=1, le=INT32_MAX, description="SparkPi's argument: partitions the computation is "
                                                             "split into (a Java int)")


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
    packages: tuple[MavenCoordinate, ...] = Field(
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
    event_log_dir: Optional[EventLogDir] = Field(
        None, description="s3a:// location of the event logs, in the lake or raw bucket (s3a://<bucket>/<prefix>, "
                          "the prefix of letters, digits and '_.=+-'); frees jobs from the volume's node. Unset: "
                          "the event logs live on the History Server's volume claim")
    # spark.history.fs.cleaner.maxAge: days, converted to milliseconds in a Java long.
    retention_days: int = Field(7, ge=1, le=INT64_MAX // 86_400_000,
                                description="Days event logs are kept before the History Server cleans them up")
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
    schedule: CronSchedule = Field("15 * * * *",
                                   description="Cron schedule of the dbt CronJob, in UTC: five fields (minute 0-59, "
                                               "hour 0-23, day of month 1-31, month 1-12, day of week 0-6) or "
                                               "@hourly, @daily, @weekly, @monthly, @yearly")
    # `dbt debug` proves the profile and credentials; bake a project into `image` and run e.g.
    # ["dbt", "build", "--project-dir", "/app"] for real transformations.
    command: tuple[ArgvWord, ...] = Field(("dbt", "debug"), min_length=1,
                                     description="Command the job runs; the default proves the profile and "
                                                 "credentials. Bake a project into image and run e.g. "
                                                 "[dbt, build, --project-dir, /app]")
    threads: int = Field(4, ge=1, le=64, description="dbt threads (profiles.yml)")


class BatchConfig(LayerConfig):
    namespace: Namespace = Field("batch-analytics", description="Kubernetes namespace of the layer, created by the "
                                                                "program (a DNS-1123 label, not default or kube-*)")
    memory_budget_mib: Mebibytes = Field(18432, alias="memoryBudget",
                                         description="Memory the layer may use, a size: the namespace's "
                                                     "ResourceQuota; the limits of everything the layer runs at "
                                                     "once (Spark pods with their overhead, the operator, the "
                                                     "object store) must fit in it")
    storage_budget_mib: Mebibytes = Field(17408, alias="storageBudget",
                                          description="Storage the layer may claim, a size: the namespace's "
                                                      "ResourceQuota; the volume claims must fit in it")
    spark_operator: SparkOperatorConfig = Field(SparkOperatorConfig(), description="The Spark operator's Helm chart")
    spark: SparkConfig = Field(SparkConfig(), description="The default Spark job profile")
    history_server: HistoryServerConfig = Field(HistoryServerConfig(), description="The Spark History Server")
    dbt: DbtConfig = Field(DbtConfig(), description="The scheduled dbt runner")
    monitoring: MonitoringConfig = Field(MonitoringConfig(prometheus=PrometheusConfig(memory=512)),
                                         description="Metrics, the layer's Prometheus, alerts and dashboard")

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
