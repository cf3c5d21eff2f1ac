"""Building blocks shared by every layer's config models."""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


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

    kube_context: Optional[str] = None
    render_directory: Optional[str] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ClusterTarget":
        if (self.kube_context is None) == (self.render_directory is None):
            raise ValueError("set exactly one of kubeContext (deploy to a cluster) or renderDirectory (write manifests)")
        return self
