"""Building blocks shared by every layer's config models.

Pure: pydantic and the size arithmetic only, no Pulumi provider SDK, so that the config models
(and tools such as scripts/config_reference.py) load without one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Annotated, ClassVar, Mapping, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import quantities
from components.quantities import format_mib

# --- grammars of values that reach a script, SQL, a properties file, a JVM flag, a URL or a name
#
# Each type below checks a value where it enters the program, so that a bad one fails before any
# resource is registered, naming its key; where the value is written out it is quoted as well
# (components/quoting.py). Messages quote the value with repr(), so that a newline in it cannot
# break the one-problem-per-line error report.

INT32_MAX = 2**31 - 1  # a Java int, a Kubernetes int32, an AWS integer
INT64_MAX = 2**63 - 1  # a Java long

# A Kubernetes namespace name (an RFC 1123 label).
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Namespaces the cluster itself uses: a layer there would share its quota, policies and RBAC.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(NAMESPACE_PATTERN, value):
        raise ValueError(f"{value!r} is not a DNS-1123 label: 1-63 lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit")
    return value


def _namespace(value: str) -> str:
    check_dns_label(value)
    if value in SYSTEM_NAMESPACES or value.startswith("kube-"):
        raise ValueError(f"{value!r} is a namespace of the cluster itself (default, kube-*); the layer needs "
                         "its own, e.g. data-ingestion")
    return value


# The namespace a layer creates and owns.
Namespace = Annotated[str, AfterValidator(_namespace)]

_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_host_name(value: str) -> str:
    """An RFC 1123 host name or an IPv4 address: what a URL's or a Kafka listener's host may be
    without brackets or escaping."""
    labels = value.split(".")
    if not (len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)):
        raise ValueError(f"{value!r} is not a host name: dot-separated labels of 1-63 letters, digits and '-' "
                         "(not at a label's ends), at most 253 characters, or an IPv4 address")
    if labels[-1].isdigit():
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither an IPv4 address nor a host name (a host name's last label "
                             "is not all digits)") from None
    return value


HostName = Annotated[str, AfterValidator(check_host_name)]


def _cidr(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR: write the prefix length too, e.g. {value}/32")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR (an IPv4 or IPv6 network such as 10.0.0.0/8)") from None
    if str(network) != value:
        raise ValueError(f"{value!r} is not a network address in canonical form; did you mean {network}?")
    return value


# Source ranges of a NetworkPolicy's ipBlock.
Cidr = Annotated[str, AfterValidator(_cidr)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_text(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{value!r} is empty; {what}")
    if _CONTROL.search(value) or value != value.strip():
        raise ValueError(f"{value!r} has control characters or leading/trailing whitespace")
    return value


def _render_directory(value: str) -> str:
    # Empty would make the Kubernetes provider apply to the current kube context instead.
    return _plain_text(value, "an empty directory would make the Kubernetes provider deploy to the current "
                              "kube context instead of writing manifests")


def _kube_context(value: str) -> str:
    # Empty would make the Kubernetes provider use whatever context is current.
    return _plain_text(value, "an empty context means the kubeconfig's current context, whichever that is")


def _local_path(value: str) -> str:
    return _plain_text(value, "name a directory or file")


RenderDirectory = Annotated[str, AfterValidator(_render_directory)]
KubeContext = Annotated[str, AfterValidator(_kube_context)]
LocalPath = Annotated[str, AfterValidator(_local_path)]


def _cap_size(mib: int) -> int:
    # Sizes become Kubernetes quantities and JVM flags: both count bytes in a signed 64-bit integer.
    if mib > INT64_MAX // quantities.MIB:
        raise ValueError(f"{format_mib(mib)} is larger than a 64-bit byte count holds")
    return mib


# A size in whole MiB (see components.quantities), at most what a signed 64-bit byte count holds.
Mebibytes = Annotated[quantities.Mebibytes, AfterValidator(_cap_size)]


class Strict(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


# An image reference, as github.com/distribution/reference parses it: [domain[:port]/]path[:tag][@digest].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*"
           r"[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?", re.ASCII)


def _pinned_image(image: str) -> str:
    match = IMAGE_REFERENCE.fullmatch(image)
    if match is None or len(match["name"]) > 255:
        raise ValueError(f"{image!r} is not an image reference ([registry/]repository:tag or "
                         "[registry/]repository@sha256:<digest>)")
    # A floating tag makes `pulumi up` non-reproducible; a digest or explicit tag is required.
    if match["digest"] is None and match["tag"] in (None, "latest"):
        raise ValueError(f"{image!r} must be pinned to an explicit tag or digest (not 'latest')")
    return image


Image = Annotated[str, AfterValidator(_pinned_image)]
NodePort = Annotated[int, Field(ge=30000, le=32767, description="Kubernetes NodePort range")]


class ClusterTarget(Strict):
    """Where one layer's Kubernetes resources go: a kubeconfig context, or manifests on disk."""

    kube_context: Optional[KubeContext] = Field(
        None, description="kubeconfig context to deploy the layer to (not empty: that would be whichever "
                          "context is current). Unset: set renderDirectory instead")
    render_directory: Optional[RenderDirectory] = Field(
        None, description="Directory the layer's manifests are written to (the Kubernetes provider's "
                          "renderYamlToDirectory) instead of deploying them; not empty, which the provider reads "
                          "as \"deploy to the current context\". Unset: set kubeContext instead")

    await_timeout: Optional[str] = Field(
        None, pattern=r"^[1-9][0-9]{0,5}(s|m|h)$",
        description="How long `pulumi up` waits for each of the layer's Kubernetes resources to be ready (a "
                    "workload's pods Ready, a PVC Bound) before it fails, e.g. 3m or 90s: Pulumi's customTimeouts "
                    "(create, update, delete). A pod the cluster refuses (a quota exceeded) then fails the update "
                    "within this time. Unset: the Kubernetes provider's own defaults (10 minutes for a workload). "
                    "Only with kubeContext")

    @field_validator("await_timeout")
    @classmethod
    def _only_when_deployed(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is not None and info.data.get("render_directory") is not None:
            raise ValueError("applies to a cluster (kubeContext); rendered manifests are not awaited")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "ClusterTarget":
        if (self.kube_context is None) == (self.render_directory is None):
            raise ValueError("set exactly one of kubeContext (deploy to a cluster) or renderDirectory (write manifests)")
        return self


class JvmService(Strict):
    """A JVM container: its heap is derived from the memory limit unless set explicitly."""

    memory_mib: Mebibytes = Field(alias="memory", description="Container memory request and limit, a size")
    heap_mib: Optional[Mebibytes] = Field(
        None, alias="heap",
        description="JVM heap (-Xmx), a size below the memory limit. Unset: a share of the memory limit, "
                    "50% (75% for Kafka Connect), leaving the rest for off-heap memory")

    # Share of the limit used for the heap when `heap` is not set. Off-heap (metaspace, threads,
    # direct buffers) needs the rest; Strimzi's rule of thumb is 50-75%.
    default_heap_percent: ClassVar[int] = 50

    @property
    def effective_heap_mib(self) -> int:
        return self.heap_mib if self.heap_mib is not None else self.memory_mib * self.default_heap_percent // 100

    @model_validator(mode="after")
    def _heap_below_limit(self):
        if self.effective_heap_mib >= self.memory_mib:
            raise ValueError(
                f"heap ({format_mib(self.effective_heap_mib)}) must be below the container memory limit "
                f"({format_mib(self.memory_mib)}); leave room for off-heap memory, e.g. heap <= 75% of memory"
            )
        return self


# RFC 1918: Kind's nodes and the host's Docker bridge are on these; no Internet address is.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


class LayerConfig(Strict):
    """Base of a layer's config (ingestion, batch). A layer runs in its own namespace on its own
    cluster, under a memory and a storage budget (`memoryBudget`, `storageBudget`, which size the
    namespace's ResourceQuota), and opens NodePorts there for clients on the host. The two checks
    that follow from this, budget and NodePort uniqueness, are written here once.

    A layer supplies what it runs (the allocations) and the ports it opens; where a check runs
    outside the layer's own model (the batch layer's, which needs the cloud section), the caller
    passes the key prefix its messages need. The class variables keep each layer's wording."""

    if TYPE_CHECKING:  # declared by each layer, with its own default
        memory_budget_mib: int
        storage_budget_mib: int

    external_host: HostName = Field("localhost", description="Host name (RFC 1123) or IPv4 address clients on the "
                                                             "host reach the layer's NodePorts at: used in the "
                                                             "layer's endpoint outputs (and Kafka's advertised "
                                                             "listeners); Kind maps the NodePorts to it (kind/)")
    # Not empty: a NetworkPolicy rule `from: []` would admit every source.
    host_access_cidrs: tuple[Cidr, ...] = Field(PRIVATE_NETWORKS, min_length=1,
                                                description="Source CIDRs the NetworkPolicies let reach the "
                                                            "NodePorts (at least one: an empty list would admit "
                                                            "every source). The default, the private networks of "
                                                            "RFC 1918, admits the host and the other Kind cluster "
                                                            "(Docker's networks) and no Internet address; narrow "
                                                            "it to your clients' networks")

    # Appended inside the parentheses of the memory message, after the per-service detail.
    memory_budget_note: ClassVar[str] = ""
    # What the memory message suggests.
    memory_budget_remedy: ClassVar[str] = "lower a service's memory or raise memoryBudget"
    # Whether the storage message lists each claim.
    itemize_storage: ClassVar[bool] = False
    # Appended to "both use NodePort <port>", e.g. " on the batch cluster".
    node_port_scope: ClassVar[str] = ""

    def budget_problems(self, memory: Mapping[str, int], storage: Mapping[str, int], prefix: str = "") -> list[str]:
        """Memory limits and storage requests (MiB per service) above the layer's budgets."""
        problems = []
        total = sum(memory.values())
        if total > self.memory_budget_mib:
            detail = ", ".join(f"{k} {format_mib(v)}" for k, v in memory.items())
            problems.append(
                f"{prefix}memory limits total {format_mib(total)} ({detail}{self.memory_budget_note}), above "
                f"memoryBudget {format_mib(self.memory_budget_mib)}; {self.memory_budget_remedy}")
        stored = sum(storage.values())
        if stored > self.storage_budget_mib:
            detail = (" (" + ", ".join(f"{k} {format_mib(v)}" for k, v in storage.items()) + ")"
                      if self.itemize_storage else "")
            problems.append(f"{prefix}storage requests total {format_mib(stored)}{detail}, above storageBudget "
                            f"{format_mib(self.storage_budget_mib)}")
        return problems

    def node_port_problems(self, ports: Mapping[str, int], key_prefix: str = "") -> list[str]:
        """Each key (in order) whose NodePort an earlier key already uses."""
        problems = []
        seen: dict[int, str] = {}
        for key, port in ports.items():
            if port in seen:
                problems.append(f"{key_prefix}{key} and {key_prefix}{seen[port]} both use NodePort {port}"
                                f"{self.node_port_scope}; each service needs its own")
            seen.setdefault(port, key)
        return problems
