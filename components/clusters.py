"""One Kubernetes provider per layer: a kubeconfig context, or manifests rendered to a directory."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.config_types import ClusterTarget


def kubernetes_provider(layer: str, target: ClusterTarget) -> k8s.Provider:
    if target.render_directory is not None:
        # Render mode needs no cluster; it rejects an explicit context, so none is passed.
        return k8s.Provider(f"{layer}-cluster", render_yaml_to_directory=target.render_directory)
    return k8s.Provider(f"{layer}-cluster", context=target.kube_context,
                        opts=pulumi.ResourceOptions(ignore_changes=["kubeconfig"]))
