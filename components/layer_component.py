"""What every service component of a layer shares: the layer it lives in, and the body each of
them repeats (generated credentials -> a Secret -> the builders' manifests as resources)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import pulumi

from components import kube


@dataclass(frozen=True)
class Layer:
    """A layer as its components see it. Built by LayerNamespace; components never patch manifests
    afterwards: builders get `namespace` and `name` as plain strings, and ordering comes from
    depending on `guard_rails`."""

    name: str  # the layer's name, e.g. "ingestion": the `datapipe.io/layer` label
    namespace: str
    external_host: str  # where the host reaches the layer's NodePorts
    # The Namespace, its quota, container defaults, RBAC and NetworkPolicies: every pod must be
    # admitted after them (the quota must be in place before the first pod is charged).
    guard_rails: tuple[pulumi.Resource, ...]

    def metadata(self, name: str, app: str) -> dict[str, Any]:
        return kube.metadata(name, self.namespace, app, self.name)

    def external_url(self, port: int) -> str:
        return f"http://{self.external_host}:{port}"

    def in_cluster_url(self, service: str, port: int) -> str:
        return f"http://{service}.{self.namespace}.svc.cluster.local:{port}"


@dataclass(frozen=True)
class Issuer:
    """The stack's certificate authority (components/tls.py) and the rotation generation its leaf
    certificates are issued for (config `tls.rotation`)."""

    ca: Any  # tls.CertificateAuthority
    rotation: int


@dataclass(frozen=True)
class MovedFrom:
    """Where a component's children were registered before it existed (their old name prefix and
    parent), so that `up` moves them in state (an alias) instead of replacing them."""

    prefix: str
    parent: pulumi.Resource


class LayerComponent(pulumi.ComponentResource):
    """Base of a service inside a layer: its children are parented to it, named after it, and
    created after the layer's guard rails."""

    def __init__(self, type_token: str, name: str, layer: Layer, opts: pulumi.ResourceOptions | None = None,
                 moved_from: Optional[MovedFrom] = None):
        super().__init__(type_token, name, None, opts)
        self._prefix = name
        self._layer = layer
        self._moved_from = moved_from

    def _options(self, depends_on: Sequence[pulumi.Resource] = (),
                 manifest: Optional[Mapping[str, Any]] = None) -> pulumi.ResourceOptions:
        aliases = None
        if self._moved_from is not None and manifest is not None:
            old = self._moved_from
            aliases = [pulumi.Alias(name=kube.resource_name(old.prefix, manifest), parent=old.parent)]
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._layer.guard_rails, *depends_on],
                                      aliases=aliases)

    def _generated_secret(self, purpose: str, length: int = 32, **shape: Any) -> pulumi.Output[str]:
        """A credential generated once and kept in state (stable across `up`), secret from birth."""
        import pulumi_random as random  # only components that generate credentials load it

        password = random.RandomPassword(f"{self._prefix}-{purpose}", length=length, special=False, **shape,
                                         opts=pulumi.ResourceOptions(parent=self))
        return pulumi.Output.secret(password.result)

    def _certificate(self, issuer: Issuer, common_name: str, dns_names: Sequence[str]) -> Any:
        """A leaf certificate of the stack's CA for `dns_names` and the layer's external host (the
        host name or address clients outside the cluster connect to)."""
        from components import tls

        host = self._layer.external_host
        is_ip = bool(re.fullmatch(r"[0-9.]+", host))
        return tls.Certificate(f"{self._prefix}-certificate", ca=issuer.ca, common_name=common_name,
                               dns_names=[*dns_names, *([] if is_ip else [host])],
                               ip_addresses=[host] if is_ip else [], rotation=issuer.rotation,
                               opts=pulumi.ResourceOptions(parent=self))

    def _secret(self, name: str, app: str, data: Mapping[str, Any],
                binary_b64: Optional[Mapping[str, Any]] = None) -> pulumi.Resource:
        """An Opaque Secret of `data` (Outputs allowed) in the layer's namespace; `binary_b64`:
        keys whose values are base64 already."""
        manifest = kube.opaque_secret(self._layer.metadata(name, app), data, binary_b64)
        return kube.create(self._prefix, manifest, self._options(manifest=manifest))

    def _create(self, manifests: Sequence[Mapping[str, Any]],
                depends_on: Sequence[pulumi.Resource] = ()) -> list[pulumi.Resource]:
        """The builders' finished manifests as resources; `depends_on` e.g. the Secret they mount."""
        return [kube.create(self._prefix, manifest, self._options(depends_on, manifest)) for manifest in manifests]
