"""Pod templates and the Kubernetes effective-memory rule for init containers and sidecars."""

import pytest

from rules._props import plain
from rules._quantity import MI
from rules._workloads import effective_pod_memory, parse_type, pod_memory, pod_template


def test_parse_type():
    assert parse_type("kubernetes:apps/v1:Deployment") == ("apps", "v1", "Deployment")
    assert parse_type("kubernetes:core/v1:Pod") == ("core", "v1", "Pod")
    assert parse_type("kubernetes:sparkoperator.k8s.io/v1beta2:SparkApplication")[0] == "sparkoperator.k8s.io"
    assert parse_type("aws:s3/bucket:Bucket") is None


@pytest.mark.parametrize(
    ("app", "init", "expected"),
    [
        ([100], [], 100),
        ([100, 50], [(300, False)], 300),  # a big init container sets the peak
        ([100, 50], [(120, False)], 150),
        ([100], [(20, True)], 120),  # a sidecar runs beside the app containers
        # sidecar 20 starts, then init 90 runs beside it (110); app 100 + sidecar 20 = 120
        ([100], [(20, True), (90, False)], 120),
        ([100], [(20, True), (200, False)], 220),
        # an init container before the sidecar runs alone
        ([100], [(200, False), (20, True)], 200),
    ],
)
def test_effective_pod_memory(app, init, expected):
    assert effective_pod_memory(app, init) == expected


def test_pod_memory_counts_request_without_limit_and_names_unbounded():
    spec = plain(
        {
            "containers": [
                {"name": "a", "resources": {"limits": {"memory": "256Mi"}}},
                {"name": "b", "resources": {"requests": {"memory": "64Mi"}}},
                {"name": "c"},
            ],
            "initContainers": [{"name": "sidecar", "restartPolicy": "Always", "resources": {"limits": {"memory": "32Mi"}}}],
            "overhead": {"memory": "10Mi"},
        }
    )
    memory = pod_memory(spec)
    assert memory.bytes == (256 + 64 + 32 + 10) * MI
    assert memory.unbounded == ("c",)


@pytest.mark.parametrize(
    ("kind", "props", "copies"),
    [
        ("Deployment", {"spec": {"template": {"spec": {}}}}, 1),
        ("Deployment", {"spec": {"replicas": 4, "template": {"spec": {}}}}, 4),
        ("StatefulSet", {"spec": {"replicas": 0, "template": {"spec": {}}}}, 0),
        ("DaemonSet", {"spec": {"template": {"spec": {}}}}, 3),
        ("Job", {"spec": {"template": {"spec": {}}}}, 1),
        ("Job", {"spec": {"parallelism": 5, "template": {"spec": {}}}}, 5),
        ("Job", {"spec": {"parallelism": 5, "completions": 2, "template": {"spec": {}}}}, 2),
        ("CronJob", {"spec": {"jobTemplate": {"spec": {"parallelism": 2, "template": {"spec": {}}}}}}, 2),
        ("Pod", {"spec": {}}, 1),
    ],
)
def test_copies_per_kind(kind, props, copies):
    assert pod_template(kind, props, node_count=3).copies == copies
