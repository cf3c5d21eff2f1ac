"""pinned-images: no :latest or untagged images; digests are fine."""

import pytest

from policy_builders import INGESTION, UNKNOWN_STR, container, deployment, ingestion_layer, resource, run_resource, spark_app
from rules.pinned_images import image_problem, pinned_images


@pytest.mark.parametrize(
    "image",
    ["postgres:17.2", "apache/kafka:3.9.1", "registry.example:5000/team/app:1.0", "app@sha256:" + "a" * 64,
     "quay.io/debezium/connect:latest@sha256:" + "b" * 64, "localhost:5000/app:v2"],
)
def test_pinned(image):
    assert image_problem(image) is None


@pytest.mark.parametrize(
    ("image", "why"),
    [("postgres", "no tag"), ("postgres:latest", ":latest"), ("registry.example:5000/team/app", "no tag"),
     ("apache/kafka:LATEST", ":latest"), ("app:", ":latest"), ("", "empty")],
)
def test_not_pinned(image, why):
    assert why in image_problem(image)


def test_realistic_layer_is_pinned():
    for res in ingestion_layer():
        assert run_resource(pinned_images, res) == [], res.name


def test_latest_in_container_and_untagged_init_container_fail():
    res = deployment("x", INGESTION, [container("app", "1Gi", image="app:latest")],
                     init=[container("wait", "16Mi", image="busybox")])
    assert run_resource(pinned_images, res).messages == [
        "container 'wait' (spec.template.spec.initContainers[0]): image 'busybox' has no tag (means :latest); pin a version or digest",
        "container 'app' (spec.template.spec.containers[0]): image 'app:latest' uses the :latest tag; pin a version or digest",
    ]


def test_spark_images():
    assert run_resource(pinned_images, spark_app("job")) == []
    assert "spec.image" in run_resource(pinned_images, spark_app("job", image="apache/spark")).text
    assert "spec.executor.image" in run_resource(pinned_images, spark_app("job", executor={"image": "spark:latest"})).text


def test_missing_and_unknown_images_do_not_crash():
    unknown = container("app", "1Gi", image=UNKNOWN_STR)
    missing = container("app2", "1Gi")
    del missing["image"]
    assert run_resource(pinned_images, deployment("x", INGESTION, [unknown, missing])) == []
    assert run_resource(pinned_images, resource("kubernetes:apps/v1:Deployment", "x", {"spec": UNKNOWN_STR})) == []


def test_config_can_require_digests():
    digest = "apache/kafka@sha256:" + "c" * 64
    tagged = deployment("x", INGESTION, [container("app", "1Gi", image="apache/kafka:3.9.1")])
    assert run_resource(pinned_images, tagged) == []
    assert "not pinned to a digest" in run_resource(pinned_images, tagged, {"requireDigest": True}).text
    pinned = deployment("x", INGESTION, [container("app", "1Gi", image=digest)])
    assert run_resource(pinned_images, pinned, {"requireDigest": True}) == []
