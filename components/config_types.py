"""Building blocks shared by every layer's config models.

Pure: pydantic and the size arithmetic only, no Pulumi provider SDK, so that the config models
(and tools such as scripts/config_reference.py) load without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Mapping, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from components.quantities import Mebibytes, format_mib

# A Kubernetes namespace name (an RFC 1123 label).
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Strict(BaseModel):
    """Base of every config model: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


def _pinned_image(image: str) -> str:
    # A floating tag makes `pulumi up` non-reproducible; a digest or explicit tag is required.
    name, _, tag = image.rpartition(":")
    if "@sha256:" in image:
        return image
    if not name or "/" in tag or not tag or tag == "latest":
        raise ValueError(f"{image!r} must be pinned to an explicit tag or digest (not 'latest')")
    return image


Image = Annotated[str, AfterValidator(_pinned_image)]
NodePort = Annotated[int, Field(ge=30000, le=32767, description="Kubernetes NodePort range")]


class ClusterTarget(Strict):
    """Where one layer's Kubernetes resources go: a kubeconfig context, or manifests on disk."""

    kube_context: Optional[str] = Field(
        None, description="kubeconfig context to deploy the layer to. Unset: set renderDirectory instead")
    render_directory: Optional[str] = Field(
        None, description="Directory the layer's manifests are written to (the Kubernetes provider's "
                          "renderYamlToDirectory) instead of deploying them. Unset: set kubeContext instead")

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
