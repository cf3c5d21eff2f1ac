"""What a layer's namespace must allow for its metrics to be scraped: the flows to each app's
metrics port (from the layer's Prometheus, and from an operator's Prometheus in its own
namespace), and the layer's Prometheus's account and its way to the API server (pod discovery)."""

from __future__ import annotations

from typing import Mapping

from components.config_types import PRIVATE_NETWORKS
from components.layer_namespace import ExternalEgress, Flow, RolePolicy
from components.observability import prometheus
from components.observability.config import MonitoringConfig

# The Kubernetes API: 443 on the `kubernetes` Service, 6443 on Kind's API server behind it
# (NetworkPolicies may see either, depending on where the CNI evaluates them).
API_PORTS = (443, 6443)


def metrics_flows(config: MonitoringConfig, ports: Mapping[str, int]) -> list[Flow]:
    """`ports`: app -> its metrics port."""
    declared = []
    for app, port in ports.items():
        if config.prometheus.enabled:
            declared.append(Flow(prometheus.APP, app, (port,)))
        if config.prometheus_operator:
            declared.append(Flow(None, app, (port,), from_namespace=config.operator_namespace))
    return declared


def service_accounts(config: MonitoringConfig) -> list[str]:
    return [prometheus.APP] if config.prometheus.enabled else []


def api_roles(config: MonitoringConfig) -> list[RolePolicy]:
    return [RolePolicy(prometheus.APP, prometheus.role_rules())] if config.prometheus.enabled else []


def api_egress(config: MonitoringConfig) -> list[ExternalEgress]:
    """The API server's address is on the node network (a private range)."""
    if not config.prometheus.enabled:
        return []
    return [ExternalEgress(prometheus.APP, API_PORTS, cidr=cidr) for cidr in PRIVATE_NETWORKS]
