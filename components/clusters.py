"""One Kubernetes provider per layer: a kubeconfig context, or manifests rendered to a directory."""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.config_types import ClusterTarget


def kubernetes_provider(layer: str, target: ClusterTarget) -> k8s.Provider:
    if target.render_directory is not None:
        # Render mode needs no cluster; it rejects an explicit context or kubeconfig, so none is
        # passed. kubeconfig="" stops the SDK from filling it in from an exported $KUBECONFIG.
        return k8s.Provider(f"{layer}-cluster", render_yaml_to_directory=target.render_directory, kubeconfig="")
    return k8s.Provider(f"{layer}-cluster", context=target.kube_context,
                        opts=pulumi.ResourceOptions(ignore_changes=["kubeconfig"]))


def await_timeouts(timeout: str) -> pulumi.ResourceTransform:
    """A transform giving every Kubernetes resource under the component it is set on customTimeouts
    of `timeout`: customTimeouts are not inherited from a parent, transforms are."""

    def apply(args: pulumi.ResourceTransformArgs) -> Optional[pulumi.ResourceTransformResult]:
        if not args.custom or not args.type_.startswith("kubernetes:"):
            return None
        timeouts = pulumi.CustomTimeouts(create=timeout, update=timeout, delete=timeout)
        return pulumi.ResourceTransformResult(args.props, pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(custom_timeouts=timeouts)))

    return apply


def layer_options(layer: str, target: ClusterTarget) -> pulumi.ResourceOptions:
    """The options of a layer's component: its cluster's provider, and its await timeout."""
    transforms = [] if target.await_timeout is None else [await_timeouts(target.await_timeout)]
    return pulumi.ResourceOptions(providers=[kubernetes_provider(layer, target)], transforms=transforms)
