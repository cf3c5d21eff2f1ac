"""The Spark History Server: there is no official chart, so it is the apache/spark image running
`start-history-server.sh` in the foreground, reading the event logs jobs write (the product description's 5Gi PVC
by default, or an s3a:// location)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.batch import spark
from components.batch.config import HistoryServerConfig, SparkConfig
from components.cloud.access import S3Endpoint
from components.layer_component import Layer, LayerComponent
from components.observability import jmx
from components.observability.config import JmxExporterConfig
from components.quoting import jvm_option, shell_word, url_path_segment, xml_text

APP = "spark-history-server"
METRICS_RULES = "spark-history-server-jmx-exporter"
PORT = 18080
CLAIM = "spark-history"
JARS_DIR = "/opt/datapipe/jars"
SPARK_JARS_DIR = "/opt/spark/jars"  # the apache/spark image's own jars
HADOOP_CONF_DIR = "/opt/datapipe/hadoop-conf"
HADOOP_CONF_MAP = "spark-history-hadoop-conf"
# Hadoop's FsShell creating the event-log prefix: a short JVM with the AWS SDK bundle loaded.
MKDIR_MEMORY_MIB, MKDIR_HEAP_MIB = 512, 256


def maven_url(coordinate: str) -> str:
    """group:artifact:version -> the jar on Maven Central."""
    group, artifact, version = (url_path_segment(part) for part in coordinate.split(":"))
    return f"https://repo1.maven.org/maven2/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"


def s3a_jars(packages: tuple[str, ...]) -> list[str]:
    # The History Server only reads event logs: it needs the s3a filesystem, not Iceberg.
    return [p for p in packages if p.startswith(("org.apache.hadoop:hadoop-aws:", "com.amazonaws:"))]


def core_site_xml(settings: dict[str, str]) -> str:
    """Hadoop's core-site.xml holding `settings` (the s3a options, without the spark.hadoop. prefix)."""
    properties = "".join(f"  <property><name>{xml_text(k)}</name><value>{xml_text(v)}</value></property>\n"
                         for k, v in settings.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{properties}</configuration>\n'


def mkdir_command(log_dir: str) -> list[str]:
    """Create the s3a event-log prefix. Spark jobs and the History Server both refuse a log
    directory that does not exist, and on S3 nothing creates one: `FsShell -mkdir -p` writes
    s3a's directory marker, and does nothing if it is there."""
    classpath = f"{SPARK_JARS_DIR}/*:{JARS_DIR}/*:{HADOOP_CONF_DIR}"
    return ["java", f"-Xmx{MKDIR_HEAP_MIB}m", "-cp", classpath, "org.apache.hadoop.fs.FsShell", "-mkdir", "-p", log_dir]


def history_opts(config: HistoryServerConfig, log_dir: str, endpoint: Optional[S3Endpoint]) -> str:
    options = {
        "spark.history.fs.logDirectory": log_dir,
        "spark.history.ui.port": str(PORT),
        # The cleaner keeps the event logs inside their volume.
        "spark.history.fs.cleaner.enabled": "true",
        "spark.history.fs.cleaner.maxAge": f"{config.retention_days}d",
    }
    if endpoint is not None:
        options |= spark.s3a_settings(endpoint)
    return " ".join(jvm_option(key, value) for key, value in options.items())


def manifests(config: HistoryServerConfig, spark_config: SparkConfig, namespace: str, layer: str,
              endpoint: S3Endpoint, jmx_exporter: JmxExporterConfig = JmxExporterConfig()) -> list[dict[str, Any]]:
    """`endpoint` is where the lake's S3 is; used only when the event logs are on s3a."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    on_s3 = config.event_log_dir is not None
    log_dir = spark.event_log_dir(config.event_log_dir)
    env = [
        {"name": "SPARK_NO_DAEMONIZE", "value": "true"},
        {"name": "SPARK_LOG_DIR", "value": "/tmp/spark-logs"},
        {"name": "SPARK_PID_DIR", "value": "/tmp"},
        # The heap follows the container limit (JvmService), leaving the rest for off-heap memory.
        {"name": "SPARK_DAEMON_MEMORY", "value": f"{config.effective_heap_mib}m"},
        {"name": "SPARK_DAEMON_JAVA_OPTS", "value": jmx.agent_option()},
        {"name": "SPARK_HISTORY_OPTS", "value": history_opts(config, log_dir, endpoint if on_s3 else None)},
    ]
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    init: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    if on_s3:
        env += spark.credentials_env() + [{"name": "SPARK_DAEMON_CLASSPATH", "value": f"{JARS_DIR}/*"}]
        volumes.append({"name": "jars", "emptyDir": {"sizeLimit": "1Gi"}})
        volumes.append({"name": "hadoop-conf", "configMap": {"name": HADOOP_CONF_MAP}})
        mounts.append({"name": "jars", "mountPath": JARS_DIR, "readOnly": True})
        extra.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(HADOOP_CONF_MAP),
                      "data": {"core-site.xml": core_site_xml(spark.s3a_settings(endpoint, prefix=""))}})
        urls = " ".join(shell_word(maven_url(p)) for p in s3a_jars(spark_config.packages))
        init.append({
            "name": "s3a-jars",
            "image": config.download_image,
            "command": ["sh", "-c", f"set -eu; cd {JARS_DIR}; for url in {urls}; do curl -fsSLO \"$url\"; done"],
            "resources": kube.memory_resources(128, "100m"),
            "securityContext": kube.restricted_security_context(spark.UID),
            "volumeMounts": [{"name": "jars", "mountPath": JARS_DIR}],
        })
        init.append({
            "name": "event-log-dir",
            "image": config.image,
            "command": mkdir_command(log_dir),
            "env": spark.credentials_env(),
            "resources": kube.memory_resources(MKDIR_MEMORY_MIB, "100m"),
            "securityContext": kube.restricted_security_context(spark.UID),
            "volumeMounts": [{"name": "jars", "mountPath": JARS_DIR, "readOnly": True},
                             {"name": "hadoop-conf", "mountPath": HADOOP_CONF_DIR, "readOnly": True}],
        })
    else:
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(CLAIM),
                       "spec": kube.claim_spec(config.storage_mib)})
        volumes.append({"name": spark.EVENTS_VOLUME, "persistentVolumeClaim": {"claimName": CLAIM}})
        mounts.append({"name": spark.EVENTS_VOLUME, "mountPath": spark.EVENTS_MOUNT})
    # Ready: the REST API lists applications (the event-log provider is up). Alive: the port accepts.
    ready = {"httpGet": {"path": "/api/v1/applications?limit=1", "port": PORT}}
    pod: dict[str, Any] = {
        **kube.service_account(APP),
        "enableServiceLinks": False,
        # fsGroup makes the event-log volume writable for jobs and the History Server's cleaner.
        "securityContext": {"runAsUser": spark.UID, "runAsNonRoot": True, "fsGroup": spark.UID},
        "containers": [{
            "name": APP,
            "image": config.image,
            "command": ["/opt/spark/sbin/start-history-server.sh"],
            "ports": [{"name": "http", "containerPort": PORT}],
            "env": env,
            "resources": kube.memory_resources(config.memory_mib, "250m"),
            "securityContext": kube.restricted_security_context(spark.UID),
            "readinessProbe": {**ready, "initialDelaySeconds": 15, "periodSeconds": 10},
            "livenessProbe": {"tcpSocket": {"port": PORT}, "initialDelaySeconds": 60, "periodSeconds": 15,
                              "failureThreshold": 6},
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }
    if init:
        pod["initContainers"] = init
    pod = jmx.instrument(pod, jmx_exporter, METRICS_RULES, spark.UID)
    # Recreate: the volume is ReadWriteOnce and a surge pod would not fit the quota.
    deployment = kube.recreate_deployment(meta(APP), APP, layer, 1, pod,
                                          {"datapipe.io/metrics-rules-sha256": kube.sha256(jmx.rules_text(APP))})
    service = kube.node_port_service(meta(APP), kube.selector(APP), "http", PORT, config.node_port)
    return claims + extra + [jmx.rules_configmap(meta(METRICS_RULES), APP), deployment, service]


@dataclass
class SparkHistoryServerArgs:
    config: HistoryServerConfig
    spark: SparkConfig
    layer: Layer
    endpoint: S3Endpoint
    # The Secret holding Spark's S3 key, which the pod reads its credentials from.
    credentials: pulumi.Resource
    jmx_exporter: JmxExporterConfig = JmxExporterConfig()


class SparkHistoryServer(LayerComponent):
    url: pulumi.Output[str]
    external_url: pulumi.Output[str]
    event_log_dir: pulumi.Output[str]

    def __init__(self, name: str, args: SparkHistoryServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:batch:SparkHistoryServer", name, layer, opts)
        self._create(manifests(args.config, args.spark, layer.namespace, layer.name, args.endpoint, args.jmx_exporter),
                     depends_on=[args.credentials])
        self.event_log_dir = pulumi.Output.from_input(spark.event_log_dir(args.config.event_log_dir))
        self.url = pulumi.Output.from_input(layer.in_cluster_url(APP, PORT))
        self.external_url = pulumi.Output.from_input(layer.external_url(args.config.host_port))
        self.register_outputs({"url": self.url, "external_url": self.external_url,
                               "event_log_dir": self.event_log_dir})


def event_log_claim(config: HistoryServerConfig) -> Optional[str]:
    """The PVC jobs write their event logs to, or None when the logs go to s3a."""
    return None if config.event_log_dir is not None else CLAIM
