from components.batch import spark_operator
from components.batch.config import SparkOperatorConfig


def values(config=None):
    return spark_operator.operator_values(config or SparkOperatorConfig(), "batch-analytics", "spark-driver", "batch")


def test_chart_values_bound_the_pods_and_scope_the_jobs():
    v = values()
    assert v["controller"]["resources"]["limits"]["memory"] == "512Mi"
    assert v["controller"]["resources"]["requests"]["memory"] == "512Mi"
    assert v["webhook"]["resources"]["limits"]["memory"] == "256Mi"
    assert v["webhook"]["enable"] is True
    assert v["spark"]["jobNamespaces"] == ["batch-analytics"]
    # The layer's own driver account and Role are used, not the chart's.
    assert v["spark"]["serviceAccount"] == {"create": False, "name": "spark-driver"}
    assert v["spark"]["rbac"] == {"create": False}
    assert v["hook"] == {"upgradeCrd": False}
    assert v["image"] == {"registry": "docker.io", "repository": "kubeflow/spark-operator", "tag": "2.5.1"}


def test_operator_pods_come_from_the_chart_values():
    pods = spark_operator.operator_pods(values(SparkOperatorConfig(controller={"replicas": 2, "memory": "300Mi"})))
    assert [(p.name, p.replicas, p.memory_mib) for p in pods] == [
        ("spark-operator-controller", 2, 300), ("spark-operator-webhook", 1, 256)]


def test_image_split_follows_the_chart():
    assert spark_operator.image_parts("ghcr.io/kubeflow/spark-operator/controller:2.5.1") == {
        "registry": "ghcr.io", "repository": "kubeflow/spark-operator/controller", "tag": "2.5.1"}
    assert spark_operator.image_parts("kubeflow/spark-operator:2.5.1")["registry"] == "docker.io"
    assert spark_operator.image_parts("localhost:5000/spark-operator:2.5.1") == {
        "registry": "localhost:5000", "repository": "spark-operator", "tag": "2.5.1"}


def test_chart_source_is_the_pinned_repository_or_a_local_chart():
    remote = spark_operator.chart_source(SparkOperatorConfig())
    assert (remote["chart"], remote["version"]) == ("spark-operator", "2.5.1")
    assert remote["repository_opts"].repo == "https://kubeflow.github.io/spark-operator"
    local = spark_operator.chart_source(SparkOperatorConfig(chart_path="charts/spark-operator-2.5.1.tgz"))
    assert local == {"chart": "charts/spark-operator-2.5.1.tgz"}
