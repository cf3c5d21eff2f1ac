"""A layer's monitoring as one component: its Prometheus (config, alert rules, Deployment), the
opt-in PodMonitor and PrometheusRule, and its Grafana dashboard. The metrics endpoints themselves
belong to the services (the JMX agent in each JVM, PostgreSQL's exporter sidecar)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.layer_component import Layer, LayerComponent
from components.observability import alerts, dashboards, prometheus
from components.observability.config import MonitoringConfig

DASHBOARD_LABEL = "grafana_dashboard"


def dashboard_configmap(namespace: str, layer: str, dashboard: dict[str, Any]) -> dict[str, Any]:
    meta = kube.metadata(f"datapipe-{layer}-dashboard", namespace, prometheus.APP, layer)
    meta["labels"] = {**meta["labels"], DASHBOARD_LABEL: "1"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {f"datapipe-{layer}.json": json.dumps(dashboard, indent=1, sort_keys=True)}}


def manifests(config: MonitoringConfig, namespace: str, layer: str, groups: list[dict[str, Any]],
              dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything a layer's monitoring creates, from its config."""
    out: list[dict[str, Any]] = []
    if config.prometheus.enabled:
        out += prometheus.manifests(config.prometheus, namespace, layer,
                                    {f"datapipe-{layer}.yaml": alerts.rules_text(groups)})
    if config.prometheus_operator:
        labels = config.operator_labels
        out += [*prometheus.pod_monitors(namespace, layer, labels),
                prometheus.prometheus_rule(namespace, layer, groups, labels)]
    if config.dashboards:
        out.append(dashboard_configmap(namespace, layer, dashboard))
    return out


def layer_dashboard(layer: str, namespace: str) -> dict[str, Any]:
    return dashboards.ingestion(namespace) if layer == "ingestion" else dashboards.batch(namespace)


@dataclass
class LayerMonitoringArgs:
    config: MonitoringConfig
    layer: Layer
    groups: list[dict[str, Any]]


class LayerMonitoring(LayerComponent):
    url: pulumi.Output[Optional[str]]

    def __init__(self, name: str, args: LayerMonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        layer = args.layer
        super().__init__("datapipe:observability:LayerMonitoring", name, layer, opts)
        self._create(manifests(args.config, layer.namespace, layer.name, args.groups,
                               layer_dashboard(layer.name, layer.namespace)))
        self.url = pulumi.Output.from_input(
            layer.in_cluster_url(prometheus.APP, prometheus.PORT) if args.config.prometheus.enabled else None)
        self.register_outputs({"url": self.url})
