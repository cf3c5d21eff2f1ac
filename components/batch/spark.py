"""The default Spark job profile: spark-defaults, the SparkPi smoke job and the Spark UI NodePort.

Pod memory of a Spark driver/executor is memory + overhead. Spark's rule for JVM jobs, unless
`memoryOverhead` is set, is overhead = max(384MiB, int(0.10 x memory)) (BasicDriverFeatureStep /
BasicExecutorFeatureStep); the budget check counts exactly that, so the overhead is left to Spark
here and only written into the SparkApplication when configured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.batch.config import SparkConfig, SparkRoleConfig
from components.cloud.access import LakeStorage, S3Endpoint
from components.layer_component import Layer, LayerComponent, MovedFrom
from components.quoting import properties_line

API_VERSION = "sparkoperator.k8s.io/v1beta2"
DRIVER_APP = "spark-driver"
EXECUTOR_APP = "spark-executor"
UI_SERVICE = "spark-ui"
DEFAULTS_CONFIG_MAP = "spark-defaults"
CREDENTIALS_SECRET = "spark-s3-credentials"
ACCESS_KEY_ID, SECRET_ACCESS_KEY = "access-key-id", "secret-access-key"
UID = 185  # the `spark` user of the apache/spark images
# Fixed ports, so that NetworkPolicies can name them (Spark picks random ones by default).
DRIVER_PORT, BLOCK_MANAGER_PORT, UI_PORT = 7078, 7079, 4040
MIN_OVERHEAD_MIB, OVERHEAD_FACTOR = 384, 0.10
EVENTS_VOLUME, EVENTS_MOUNT = "spark-events", "/spark-events"


def overhead_mib(role: SparkRoleConfig) -> int:
    if role.memory_overhead_mib is not None:
        return role.memory_overhead_mib
    return max(MIN_OVERHEAD_MIB, int(OVERHEAD_FACTOR * role.memory_mib))


def pod_memory_mib(role: SparkRoleConfig) -> int:
    """What Kubernetes sees as the pod's memory request and limit."""
    return role.memory_mib + overhead_mib(role)


def spark_memory(mib: int) -> str:
    """Spark's notation (JVM sizes): 3072 -> "3g", 1536 -> "1536m"."""
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


def s3a_settings(endpoint: S3Endpoint, prefix: str = "spark.hadoop.") -> dict[str, str]:
    """Hadoop s3a options for an endpoint; keys come from the environment (a Secret), never from here."""
    settings = {
        f"{prefix}fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
        f"{prefix}fs.s3a.endpoint.region": endpoint.region,
    }
    if endpoint.url is not None:
        settings |= {
            f"{prefix}fs.s3a.endpoint": endpoint.url,
            # S3-compatible stores are addressed by path, not by virtual host.
            f"{prefix}fs.s3a.path.style.access": "true",
            f"{prefix}fs.s3a.connection.ssl.enabled": str(endpoint.url.startswith("https://")).lower(),
        }
    return settings


def spark_conf(config: SparkConfig, lake_bucket: str, endpoint: S3Endpoint, event_log_dir: str) -> dict[str, str]:
    catalog = f"spark.sql.catalog.{config.iceberg_catalog}"
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_log_dir,
        "spark.driver.port": str(DRIVER_PORT),
        "spark.driver.blockManager.port": str(BLOCK_MANAGER_PORT),
        "spark.blockManager.port": str(BLOCK_MANAGER_PORT),
        "spark.ui.port": str(UI_PORT),
        "spark.jars.packages": ",".join(config.packages),
        # The image's `spark` user has no writable home for Ivy's default cache.
        "spark.jars.ivy": "/tmp/.ivy2",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        # A Hadoop catalog keeps table metadata next to the data, so the lake needs no metastore.
        # It relies on atomic renames, so keep one writer per table (a JDBC/REST catalog lifts that).
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "hadoop",
        f"{catalog}.warehouse": f"s3a://{lake_bucket}/warehouse",
        **s3a_settings(endpoint),
        **METRICS_CONF,
    }


# Spark's own Prometheus endpoint on the driver's UI port (/metrics/prometheus/), with the JVM's
# memory and GC: no agent to fetch into the image, no extra port. A fixed namespace keeps the
# series' names the same from one run to the next (Spark's default is the application id).
METRICS_CONF = {
    "spark.metrics.namespace": "datapipe",
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    "spark.metrics.conf.driver.source.jvm.class": "org.apache.spark.metrics.source.JvmSource",
}


def event_log_dir(configured: Optional[str]) -> str:
    return configured if configured is not None else f"file://{EVENTS_MOUNT}"


def credentials_env() -> list[dict[str, Any]]:
    return [
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": CREDENTIALS_SECRET, "key": ACCESS_KEY_ID}}},
        {"name": "AWS_SECRET_ACCESS_KEY",
         "valueFrom": {"secretKeyRef": {"name": CREDENTIALS_SECRET, "key": SECRET_ACCESS_KEY}}},
    ]


def _role_spec(role: SparkRoleConfig, app: str, service_account: str, layer: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cores": role.cores,
        "memory": spark_memory(role.memory_mib),
        "serviceAccount": service_account,
        "labels": kube.labels(app, layer),
        "env": credentials_env(),
        "securityContext": kube.restricted_security_context(UID),
    }
    if role.core_limit is not None:
        spec["coreLimit"] = role.core_limit
    if role.memory_overhead_mib is not None:
        spec["memoryOverhead"] = f"{role.memory_overhead_mib}m"
    return spec


def spark_application(config: SparkConfig, namespace: str, layer: str, conf: Any,
                      executor_service_account: str, driver_service_account: str,
                      history_claim: Optional[str], history_app: str) -> dict[str, Any]:
    """The smoke job on the default profile. `conf` is the profile's Spark configuration (a dict,
    or an Output of one); `history_claim` is the event-log PVC, if logs go there."""
    smoke = config.smoke_job
    driver = _role_spec(config.driver, DRIVER_APP, driver_service_account, layer)
    executor = {**_role_spec(config.executor, EXECUTOR_APP, executor_service_account, layer),
                "instances": config.executor.instances}
    spec: dict[str, Any] = {
        "type": "Scala",
        "mode": "cluster",
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile":
            f"local:///opt/spark/examples/jars/spark-examples_{config.scala_version}-{config.spark_version}.jar",
        "arguments": [str(smoke.slices)],
        "sparkVersion": config.spark_version,
        "restartPolicy": {"type": "Never"},
        "sparkConf": conf,
        "driver": driver,
        "executor": executor,
    }
    if history_claim is not None:
        spec["volumes"] = [{"name": EVENTS_VOLUME, "persistentVolumeClaim": {"claimName": history_claim}}]
        driver["volumeMounts"] = [{"name": EVENTS_VOLUME, "mountPath": EVENTS_MOUNT}]
        driver["podSecurityContext"] = {"fsGroup": UID}
        # Kind's volumes are ReadWriteOnce: the driver must run on the History Server's node.
        driver["affinity"] = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": kube.selector(history_app)},
            "topologyKey": "kubernetes.io/hostname",
        }]}}
    return {
        "apiVersion": API_VERSION,
        "kind": "SparkApplication",
        "metadata": {"name": smoke.name, "namespace": namespace, "labels": kube.labels("spark-smoke-job", layer)},
        "spec": spec,
    }


def defaults_text(config: SparkConfig, conf: dict[str, str], namespace: str, driver_service_account: str,
                  history_claim: Optional[str]) -> str:
    """spark-defaults.conf for jobs submitted with spark-submit: the same profile as the smoke job.
    Spark reads it with java.util.Properties, so each entry is escaped for that (components/quoting.py)."""
    volume = f"spark.kubernetes.driver.volumes.persistentVolumeClaim.{EVENTS_VOLUME}"
    mount = {} if history_claim is None else {
        # The driver writes its event log onto the History Server's volume.
        f"{volume}.mount.path": EVENTS_MOUNT,
        f"{volume}.options.claimName": history_claim,
    }
    profile = {
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.container.image": config.image,
        "spark.kubernetes.authenticate.driver.serviceAccountName": driver_service_account,
        "spark.driver.memory": spark_memory(config.driver.memory_mib),
        "spark.driver.cores": str(config.driver.cores),
        "spark.executor.memory": spark_memory(config.executor.memory_mib),
        "spark.executor.cores": str(config.executor.cores),
        "spark.executor.instances": str(config.executor.instances),
        **mount,
        **conf,
    }
    return "".join(properties_line(key, value, separator=" ") + "\n" for key, value in profile.items())


def manifests(config: SparkConfig, namespace: str, layer: str, defaults: Any) -> list[dict[str, Any]]:
    """The spark-defaults ConfigMap (`defaults` may be an Output) and the Spark UI NodePort."""
    meta = lambda name: kube.metadata(name, namespace, DRIVER_APP, layer)  # noqa: E731
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(DEFAULTS_CONFIG_MAP),
         "data": {"spark-defaults.conf": defaults}},
        # The budget holds one default-profile job at a time, so one driver answers here.
        kube.node_port_service(meta(UI_SERVICE), kube.selector(DRIVER_APP), "ui", UI_PORT, config.ui_node_port),
    ]


@dataclass
class SparkProfileArgs:
    config: SparkConfig
    layer: Layer
    # The lake bucket and Spark's own key (AWS's buckets, or the in-cluster store's).
    storage: LakeStorage
    event_log_dir: str
    # The History Server's event-log PVC the driver mounts, or None when the logs go to s3a.
    history_claim: Optional[str]
    driver_service_account: str


class SparkProfile(LayerComponent):
    """The default job profile: Spark's S3 key as a Secret, spark-defaults for spark-submit, and
    the Spark UI NodePort. `conf` is the profile's Spark configuration, for jobs built on it."""

    credentials: pulumi.Resource
    conf: pulumi.Output[dict]
    defaults_config_map: pulumi.Output[str]

    def __init__(self, name: str, args: SparkProfileArgs, opts: Optional[pulumi.ResourceOptions] = None,
                 moved_from: Optional[MovedFrom] = None):
        layer, cfg, storage = args.layer, args.config, args.storage
        super().__init__("datapipe:batch:SparkProfile", name, layer, opts, moved_from)
        endpoint = storage.spark.endpoint
        self.credentials = self._secret(CREDENTIALS_SECRET, DRIVER_APP, {
            ACCESS_KEY_ID: pulumi.Output.secret(storage.spark.access_key_id),
            SECRET_ACCESS_KEY: pulumi.Output.secret(storage.spark.secret_access_key),
        })
        self.conf = pulumi.Output.from_input(storage.lake_bucket).apply(
            lambda bucket: spark_conf(cfg, bucket, endpoint, args.event_log_dir))
        defaults = self.conf.apply(lambda c: defaults_text(cfg, c, layer.namespace, args.driver_service_account,
                                                           args.history_claim))
        self._create(manifests(cfg, layer.namespace, layer.name, defaults))
        self.defaults_config_map = pulumi.Output.from_input(DEFAULTS_CONFIG_MAP)
        self.register_outputs({"conf": self.conf, "defaults_config_map": self.defaults_config_map})


@dataclass
class SparkSmokeJobArgs:
    config: SparkConfig
    layer: Layer
    profile: SparkProfile
    # The operator's chart: its CRDs must exist before the SparkApplication.
    operator_chart: pulumi.Resource
    # The History Server: its event-log volume must exist before the driver mounts it.
    history: pulumi.Resource
    history_claim: Optional[str]
    history_app: str
    driver_service_account: str
    executor_service_account: str


class SparkSmokeJob(LayerComponent):
    """The product description's validation job: SparkPi, as a SparkApplication on the default profile."""

    def __init__(self, name: str, args: SparkSmokeJobArgs, opts: Optional[pulumi.ResourceOptions] = None,
                 moved_from: Optional[MovedFrom] = None):
        layer = args.layer
        super().__init__("datapipe:batch:SparkSmokeJob", name, layer, opts, moved_from)
        app = spark_application(args.config, layer.namespace, layer.name, args.profile.conf,
                                args.executor_service_account, args.driver_service_account, args.history_claim,
                                args.history_app)
        self._create([app], depends_on=[args.operator_chart, args.profile.credentials, args.history])
        self.register_outputs({})
