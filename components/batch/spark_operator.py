"""The kubeflow Spark operator, installed from its Helm chart with `helm.v4.Chart`.

`helm.v4.Chart` (not `helm.v3.Release`) registers every rendered object as a child resource, so
the policy pack sees the operator's Deployments and their memory limits, and render mode can
write them out. The chart values come from one pure function, `operator_values`, which the
memory accounting (components/batch/memory.py) reads too: under mocks the chart has no children,
and the budget must still count the controller and webhook pods the chart will run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi

from components import kube
from components.batch.config import SparkOperatorConfig
from components.layer_component import Layer, LayerComponent
from components.quantities import parse_mib

APP = "spark-operator"
RELEASE = "spark-operator"
WEBHOOK_PORT = 9443


def image_parts(image: str) -> dict[str, str]:
    """docker.io/kubeflow/spark-operator:2.5.1 -> registry, repository, tag (the chart's split)."""
    name, _, tag = image.rpartition(":")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = "docker.io", name
    return {"registry": registry, "repository": repository, "tag": tag}


def operator_values(config: SparkOperatorConfig, job_namespace: str, driver_service_account: str,
                    layer: str) -> dict[str, Any]:
    """The chart values: bounded controller and webhook, jobs in the layer's namespace only, and
    the layer's own driver service account and Role instead of the chart's."""
    return {
        "commonLabels": {"app.kubernetes.io/part-of": kube.PART_OF, "datapipe.io/layer": layer},
        "image": image_parts(config.image),
        "controller": {
            "replicas": config.controller.replicas,
            "resources": kube.memory_resources(config.controller.memory_mib, "100m"),
            # The operator's per-application UI Service; the layer adds a NodePort for the host.
            "uiService": {"enable": True},
        },
        # On by default in the chart and required: it applies volumes, env from Secrets, labels and
        # affinity of SparkApplications to the driver and executor pods.
        "webhook": {
            "enable": True,
            "replicas": config.webhook.replicas,
            "port": WEBHOOK_PORT,
            "resources": kube.memory_resources(config.webhook.memory_mib, "100m"),
        },
        "spark": {
            # The chart's default is [default]: jobs elsewhere would be ignored.
            "jobNamespaces": [job_namespace],
            "serviceAccount": {"create": False, "name": driver_service_account},
            "rbac": {"create": False},
        },
        # Pulumi applies the chart's CRDs itself (before any custom resource that depends on the
        # chart); the chart's CRD-upgrade hook Job would only duplicate that.
        "hook": {"upgradeCrd": False},
    }


@dataclass(frozen=True)
class OperatorPod:
    name: str
    replicas: int
    memory_mib: int


def operator_pods(values: dict[str, Any]) -> list[OperatorPod]:
    """The pods the chart runs for these values, with their memory limits."""
    pods = []
    for role in ("controller", "webhook"):
        section = values[role]
        if section.get("enable", True):
            pods.append(OperatorPod(f"{RELEASE}-{role}", section["replicas"],
                                    parse_mib(section["resources"]["limits"]["memory"])))
    return pods


def chart_source(config: SparkOperatorConfig) -> dict[str, Any]:
    """Chart arguments: the pinned chart from its repository, or a local chart (air-gapped/render)."""
    import pulumi_kubernetes as k8s  # not at module level: the memory accounting imports this module

    if config.chart_path is not None:
        return {"chart": config.chart_path}
    return {"chart": config.chart, "version": config.version,
            "repository_opts": k8s.helm.v4.RepositoryOptsArgs(repo=config.repository)}


@dataclass
class SparkOperatorArgs:
    config: SparkOperatorConfig
    layer: Layer
    driver_service_account: str


class SparkOperator(LayerComponent):
    """Depend on `chart` before creating SparkApplications: its CRDs must exist first."""

    def __init__(self, name: str, args: SparkOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        import pulumi_kubernetes as k8s

        layer = args.layer
        super().__init__("datapipe:batch:SparkOperator", name, layer, opts)
        self.chart = k8s.helm.v4.Chart(
            f"{name}-chart",
            name=RELEASE,
            namespace=layer.namespace,
            values=operator_values(args.config, layer.namespace, args.driver_service_account, layer.name),
            **chart_source(args.config),
            opts=self._options(),
        )
        self.register_outputs({})
