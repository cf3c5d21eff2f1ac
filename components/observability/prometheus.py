"""Scraping a layer: the layer's own small Prometheus (its config, rules and Deployment), and the
PodMonitor and PrometheusRule objects for users whose kube-prometheus-stack does the scraping.

Both find the same pods the same way: every pod of the layer with a container port named
`metrics` is a target, labelled with its app, pod and container. The layer's Prometheus finds
them through the Kubernetes API (a Role that may list the namespace's pods, nothing else), so a
new broker or Connect replica is scraped without a config change."""

from __future__ import annotations

from typing import Any, Mapping

import yaml

from components import kube
from components.observability.config import PrometheusConfig

APP = "prometheus"
PORT = 9090
UID = 65534  # the image's nobody user
CONFIG_DIR = "/etc/prometheus"
RULES_DIR = "/etc/prometheus/rules"
DATA_DIR = "/prometheus"
METRICS_PORT_NAME = "metrics"
# Spark serves its own metrics (PrometheusServlet) on the driver's UI port.
SPARK_DRIVER_JOB = "spark-driver"


def pod_relabelings() -> list[dict[str, Any]]:
    """Keep the pods' `metrics` ports; name targets by app, pod and container."""
    return [
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": METRICS_PORT_NAME,
         "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "target_label": "app"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    ]


def spark_driver_relabelings() -> list[dict[str, Any]]:
    return [
        {"source_labels": ["__meta_kubernetes_pod_label_spark_role"], "regex": "driver", "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": "4040", "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_label_sparkoperator_k8s_io_app_name"], "target_label": "app"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    ]


def scrape_config(config: PrometheusConfig, namespace: str, layer: str, spark_drivers: bool = False) -> dict[str, Any]:
    """prometheus.yml of a layer's Prometheus."""
    sd = [{"role": "pod", "namespaces": {"names": [namespace]}}]
    jobs: list[dict[str, Any]] = [
        {"job_name": "datapipe", "kubernetes_sd_configs": sd, "relabel_configs": pod_relabelings()},
        {"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{PORT}"]}]},
    ]
    if spark_drivers:
        jobs.append({"job_name": SPARK_DRIVER_JOB, "metrics_path": "/metrics/prometheus/",
                     "kubernetes_sd_configs": sd, "relabel_configs": spark_driver_relabelings()})
    return {
        "global": {"scrape_interval": config.scrape_interval, "evaluation_interval": config.scrape_interval,
                   "external_labels": {"layer": layer}},
        "rule_files": [f"{RULES_DIR}/*.yaml"],
        "scrape_configs": jobs,
    }


def role_rules() -> tuple[dict[str, Any], ...]:
    """What the layer's Prometheus may do with the API: find the namespace's pods."""
    return ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},)


def retention_size_mb(config: PrometheusConfig) -> int:
    # Below the emptyDir's limit: the kubelet evicts a pod whose emptyDir outgrows its sizeLimit,
    # and the TSDB's WAL and compaction need room beside the retained blocks.
    return config.storage_mib * 3 // 4


def manifests(config: PrometheusConfig, namespace: str, layer: str, rules: dict[str, str]) -> list[dict[str, Any]]:
    """`rules`: file name -> Prometheus rules text (alerts and recording rules)."""
    meta = lambda name: kube.metadata(name, namespace, APP, layer)  # noqa: E731
    settings = {"prometheus.yml": yaml.safe_dump(scrape_config(config, namespace, layer, layer == "batch"),
                                                 sort_keys=False)}
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("prometheus-config"), "data": settings}
    rules_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("prometheus-rules"), "data": rules}
    http = lambda path: {"httpGet": {"path": path, "port": PORT}}  # noqa: E731
    pod = {
        "serviceAccountName": APP,
        # The only pod of the layer that calls the API (service discovery, a read-only Role).
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "securityContext": {"runAsUser": UID, "runAsNonRoot": True, "fsGroup": UID},
        "containers": [{
            "name": APP,
            "image": config.image,
            "args": [
                f"--config.file={CONFIG_DIR}/prometheus.yml",
                f"--storage.tsdb.path={DATA_DIR}",
                f"--storage.tsdb.retention.time={config.retention}",
                f"--storage.tsdb.retention.size={retention_size_mb(config)}MB",
                f"--web.listen-address=:{PORT}",
            ],
            "ports": [{"name": "http", "containerPort": PORT}],
            "resources": kube.memory_resources(config.memory_mib, "100m"),
            "securityContext": kube.restricted_security_context(UID),
            "readinessProbe": {**http("/-/ready"), "periodSeconds": 10},
            "livenessProbe": {**http("/-/healthy"), "initialDelaySeconds": 30, "periodSeconds": 15,
                              "failureThreshold": 6},
            "volumeMounts": [
                {"name": "config", "mountPath": f"{CONFIG_DIR}/prometheus.yml", "subPath": "prometheus.yml",
                 "readOnly": True},
                {"name": "rules", "mountPath": RULES_DIR, "readOnly": True},
                {"name": "data", "mountPath": DATA_DIR},
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": "prometheus-config"}},
            {"name": "rules", "configMap": {"name": "prometheus-rules"}},
            {"name": "data", "emptyDir": {"sizeLimit": f"{config.storage_mib}Mi"}},
        ],
    }
    annotations = {"datapipe.io/config-sha256": kube.sha256(settings["prometheus.yml"]),
                   "datapipe.io/rules-sha256": kube.sha256(yaml.safe_dump(rules, sort_keys=True))}
    # Recreate: a surge pod would not fit the layer's memory quota.
    deployment = kube.recreate_deployment(meta(APP), APP, layer, 1, pod, annotations)
    service = kube.cluster_ip_service(meta(APP), kube.selector(APP), "http", PORT)
    return [config_map, rules_map, deployment, service]


def _operator_metadata(name: str, namespace: str, layer: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """`labels`: what the operator's Prometheus selects its PodMonitors and rules by (e.g. a
    kube-prometheus-stack's `release: <its release>`)."""
    meta = kube.metadata(name, namespace, APP, layer)
    return {**meta, "labels": {**meta["labels"], **labels}}


def pod_monitors(namespace: str, layer: str, labels: Mapping[str, str] = {}) -> list[dict[str, Any]]:
    """For a Prometheus Operator: the same targets as the jobs above (and the same job names)."""
    monitors = [{
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _operator_metadata(f"datapipe-{layer}", namespace, layer, labels),
        "spec": {
            "selector": {"matchLabels": {"datapipe.io/layer": layer}},
            "namespaceSelector": {"matchNames": [namespace]},
            "podMetricsEndpoints": [{"port": METRICS_PORT_NAME, "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "targetLabel": "app"},
                {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "targetLabel": "container"},
                # The operator names the job after the PodMonitor; the alerts and dashboards select
                # job="datapipe", as the layer's own Prometheus names it.
                {"targetLabel": "job", "replacement": "datapipe"},
            ]}],
        },
    }]
    if layer == "batch":
        monitors.append({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": _operator_metadata(f"datapipe-{SPARK_DRIVER_JOB}", namespace, layer, labels),
            "spec": {
                "selector": {"matchLabels": {"spark-role": "driver"}},
                "namespaceSelector": {"matchNames": [namespace]},
                # Spark names the driver's UI port spark-ui.
                "podMetricsEndpoints": [{"port": "spark-ui", "path": "/metrics/prometheus/", "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_pod_label_sparkoperator_k8s_io_app_name"],
                     "targetLabel": "app"},
                    {"targetLabel": "job", "replacement": SPARK_DRIVER_JOB},
                ]}],
            },
        })
    return monitors


def prometheus_rule(namespace: str, layer: str, groups: list[dict[str, Any]],
                    labels: Mapping[str, str] = {}) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": _operator_metadata(f"datapipe-{layer}", namespace, layer, labels), "spec": {"groups": groups}}
