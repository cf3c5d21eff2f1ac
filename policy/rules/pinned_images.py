"""pinned-images: every image names a tag other than `latest`, or a digest.

`latest` (or no tag, which means latest) makes two `pulumi up`s of the same commit run
different software, and a node that already pulled an older `latest` keeps using it.
"""

from __future__ import annotations

from typing import Any

from ._layers import ResourceView, bool_setting, flag_schema
from ._props import get, reveal
from ._rule import Config, rule
from ._workloads import containers_of, spark_kind, spark_spec


def image_problem(image: str, require_digest: bool = False) -> str | None:
    """Why `image` is not pinned, or None when it is (tag other than latest, or digest)."""
    image = image.strip()
    if not image:
        return "has an empty image"
    if "@sha256:" in image or "@sha512:" in image:
        return None
    if require_digest:
        # A tag can be moved to other content; only a digest names the bytes that run.
        return f"image '{image}' is not pinned to a digest (@sha256:...)"
    last_segment = image.rsplit("/", 1)[-1]  # a registry may carry a :port before the first '/'
    if ":" not in last_segment:
        return f"image '{image}' has no tag (means :latest); pin a version or digest"
    tag = last_segment.rsplit(":", 1)[1]
    if tag == "" or tag.lower() == "latest":
        return f"image '{image}' uses the :latest tag; pin a version or digest"
    return None


def unpinned_images(resource_type: str, props: dict[str, Any], require_digest: bool = False) -> list[str]:
    candidates: list[tuple[str, Any]] = []
    for ref in containers_of(resource_type, props):
        candidates.append((f"container '{ref.name}' ({ref.path})", get(ref.container, "image")))
    kind = spark_kind(resource_type)
    if kind:
        spec = spark_spec(kind, props)
        candidates.append(("spec.image", get(spec, "image")))
        for role in ("driver", "executor"):
            candidates.append((f"spec.{role}.image", get(spec, role, "image")))
    problems = []
    for where, image in candidates:
        image = reveal(image)
        # Missing (Spark role images default to spec.image) or unknown in preview: nothing to judge.
        if isinstance(image, str):
            problem = image_problem(image, require_digest)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def check(res: ResourceView, config: Config) -> list[str]:
    require_digest = bool_setting(config, "requireDigest", False)
    return unpinned_images(res.resource_type, res.props, require_digest)


pinned_images = rule(
    "pinned-images",
    "Container, init container and SparkApplication images are pinned to a tag other "
    "than latest, or to a digest.",
    check,
    config={"requireDigest": flag_schema("Accept only digests (@sha256:...), not tags.")},
)
