"""Monitoring settings of a layer (`ingestion.monitoring`, `batch.monitoring`): the JMX exporter
agent in every JVM, the layer's own small Prometheus, and the opt-in objects for a
kube-prometheus-stack the user already runs."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from components.config_types import Image, Mebibytes, Strict, check_dns_label

def _grammar(pattern: str, what: str) -> object:
    """A string type that must match `pattern` entirely; `what` completes "'<value>' is not ..."."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return Annotated[str, AfterValidator(check)]


# Prometheus's duration grammar, restricted to what a retention or an interval needs.
Duration = _grammar(r"[1-9][0-9]{0,5}(s|m|h|d|w)", "a duration: a whole number and one unit of s, m, h, d, w, "
                                                   "e.g. 15s or 7d")
Sha256 = _grammar(r"[0-9a-f]{64}", "a SHA-256 digest: 64 lower-case hex digits")
Version = _grammar(r"[0-9]+\.[0-9]+\.[0-9]+", "a release version such as 1.0.1")
DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
# Kubernetes label syntax: an optional DNS-subdomain prefix and a name of 1-63 characters; a value
# of at most 63, both alphanumeric at the ends.
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LabelKey = _grammar(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}",
                    "a Kubernetes label key ([prefix/]name, name 1-63 of letters, digits, '-_.')")
LabelValue = _grammar(rf"({_LABEL_NAME})?", "a Kubernetes label value (at most 63 letters, digits, '-_.', "
                                            "alphanumeric at both ends)")
JMX_EXPORTER_VERSION = "1.0.1"
# The jar Maven Central serves for 1.0.1 (checked by scripts/services.sh, which fetches the same file).
JMX_EXPORTER_SHA256 = "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"


class JmxExporterConfig(Strict):
    # sha256 first: version's check reads it.
    sha256: Sha256 = Field(JMX_EXPORTER_SHA256, description="SHA-256 of the agent's jar; the init container refuses "
                                                            "any other file. Set it together with version")
    version: Version = Field(
        JMX_EXPORTER_VERSION, description="Version of io.prometheus.jmx:jmx_prometheus_javaagent fetched from "
                                          "Maven Central by an init container")
    download_image: Image = Field("curlimages/curl:8.11.1",
                                  description="Image of the init container that fetches the agent")

    @field_validator("version")
    @classmethod
    def _pinned_together(cls, version: str, info: ValidationInfo) -> str:
        # Another version with the default's digest would only fail in the pods, at every start.
        if version != JMX_EXPORTER_VERSION and info.data.get("sha256") == JMX_EXPORTER_SHA256:
            raise ValueError(f"{version} needs its own sha256 (the SHA-256 of {version}'s jmx_prometheus_javaagent "
                             "jar): set both")
        return version


class PrometheusConfig(Strict):
    enabled: bool = Field(True, description="Deploy the layer's own Prometheus (scrapes the layer, evaluates its "
                                            "alerts). Turn off when a kube-prometheus-stack scrapes the layer "
                                            "(prometheusOperator: true)")
    image: Image = Field("prom/prometheus:v3.16.0", description="Prometheus image, pinned to a tag or digest")
    memory_mib: Mebibytes = Field(320, alias="memory", description="Container memory request and limit, a size "
                                                                    "(counted in the layer's budget)")
    retention: Duration = Field("3d", description="How long samples are kept (--storage.tsdb.retention.time)")
    storage_mib: Mebibytes = Field(1024, alias="storage",
                                   description="Size limit of the emptyDir holding the samples, a size; the "
                                               "retention by size is 75% of it. An emptyDir, not a claim: the "
                                               "layer's storage budget is spent on its data, and a restart "
                                               "losing days of samples loses no data of the pipeline")
    scrape_interval: Duration = Field("15s", description="Scrape and rule evaluation interval")


class PostgresExporterConfig(Strict):
    image: Image = Field("quay.io/prometheuscommunity/postgres-exporter:v0.20.1",
                         description="postgres_exporter image (a sidecar of the PostgreSQL pod), pinned to a tag "
                                     "or digest")
    memory_mib: Mebibytes = Field(64, alias="memory", description="Container memory request and limit, a size "
                                                                   "(counted in the layer's budget)")


class MonitoringConfig(Strict):
    """Metrics are always exposed (the agents cost no memory beyond what their JVM's limit already
    holds); what scrapes them is the user's choice."""

    jmx_exporter: JmxExporterConfig = Field(JmxExporterConfig(), description="The Prometheus JMX exporter java "
                                                                             "agent in every JVM")
    prometheus: PrometheusConfig = Field(PrometheusConfig(), description="The layer's own Prometheus")
    prometheus_operator: bool = Field(False, description="Also create PodMonitor and PrometheusRule objects for "
                                                         "a Prometheus Operator (kube-prometheus-stack); its "
                                                         "CRDs must be installed")
    operator_namespace: DnsLabel = Field("monitoring", description="Namespace of that operator's Prometheus: the "
                                                             "layer's NetworkPolicies let its pods reach the "
                                                             "metrics ports (with prometheusOperator)")
    operator_labels: dict[LabelKey, LabelValue] = Field(
        {}, description="Labels for those PodMonitors and PrometheusRules, for an operator that selects them "
                        "by label (kube-prometheus-stack by default selects release: <its release name>)")
    dashboards: bool = Field(True, description="Create the layer's Grafana dashboard as a ConfigMap labelled "
                                               "grafana_dashboard=1 (the Grafana sidecar's default label)")

    @property
    def prometheus_memory_mib(self) -> int:
        return self.prometheus.memory_mib if self.prometheus.enabled else 0


class IngestionMonitoringConfig(MonitoringConfig):
    postgres_exporter: PostgresExporterConfig = Field(PostgresExporterConfig(),
                                                      description="PostgreSQL's metrics exporter")
