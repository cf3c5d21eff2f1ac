"""jvm-heap-fits: heaps set via env *_OPTS, JAVA_TOOL_OPTIONS, command or args fit the limit."""

import pytest

from policy_builders import INGESTION, UNKNOWN_STR, container, deployment, ingestion_layer, kafka, run_resource, spark_app
from rules.jvm_heap_fits import jvm_heap_fits


def test_realistic_layer_heaps_fit():
    for res in ingestion_layer():
        assert run_resource(jvm_heap_fits, res) == [], res.name


def test_bigger_heap_fails_with_numbers():
    found = run_resource(jvm_heap_fits, kafka(heap="-Xms600m -Xmx600m"))
    assert found.messages == [
        "container 'kafka': heap -Xmx600m (600Mi, from env KAFKA_HEAP_OPTS) is 88% of its 682Mi "
        "memory limit; keep it at or below 80% (545.6Mi)"
    ]


@pytest.mark.parametrize(
    ("env", "args", "command"),
    [
        ([{"name": "JAVA_OPTS", "value": "-server -Xmx1800m"}], None, None),
        ([{"name": "JAVA_TOOL_OPTIONS", "value": "-XX:MaxRAMPercentage=90.0"}], None, None),
        ([{"name": "SCHEMA_REGISTRY_HEAP_OPTS", "value": "-Xmx2g"}], None, None),
        ([{"name": "SPARK_DAEMON_JAVA_OPTS", "value": "-XX:MaxHeapSize=1900m"}], None, None),
        (None, ["-Xmx1900m", "-jar", "app.jar"], None),
        (None, None, ["sh", "-c", "exec java -Xms1g -Xmx1900m -jar app.jar"]),
    ],
)
def test_heap_sources(env, args, command):
    app = container("app", "2Gi", env=env, args=args, command=command)
    assert len(run_resource(jvm_heap_fits, deployment("x", INGESTION, [app]))) == 1


def test_largest_heap_wins_and_bare_numbers_are_bytes():
    app = container("app", "1Gi", env=[{"name": "JAVA_OPTS", "value": "-Xmx900m"}], args=["-Xmx1048576"])
    assert "-Xmx900m" in run_resource(jvm_heap_fits, deployment("x", INGESTION, [app])).text


def test_init_containers_are_checked():
    init = container("migrate", "256Mi", env=[{"name": "FLYWAY_OPTS", "value": "-Xmx250m"}])
    found = run_resource(jvm_heap_fits, deployment("x", INGESTION, [container("app", "1Gi")], init=[init]))
    assert "container 'migrate'" in found.text


def test_config_override_allows_a_larger_share():
    assert run_resource(jvm_heap_fits, kafka(heap="-Xmx600m"), {"maxHeapShare": 0.9}) == []
    assert run_resource(jvm_heap_fits, kafka(heap="-Xmx400m"), {"maxHeapShare": 0.5})
    assert "invalid configuration" in run_resource(jvm_heap_fits, kafka(), {"maxHeapShare": 0}).text


def test_missing_and_unknown_values_are_skipped():
    no_limit = container("app", None, env=[{"name": "JAVA_OPTS", "value": "-Xmx8g"}])
    assert run_resource(jvm_heap_fits, deployment("x", INGESTION, [no_limit])) == []
    unknown_limit = container("app", UNKNOWN_STR, env=[{"name": "JAVA_OPTS", "value": "-Xmx8g"}])
    assert run_resource(jvm_heap_fits, deployment("x", INGESTION, [unknown_limit])) == []
    unknown_env = container("app", "1Gi", env=[{"name": "JAVA_OPTS", "value": UNKNOWN_STR}, {"name": "X"}], args=[UNKNOWN_STR])
    assert run_resource(jvm_heap_fits, deployment("x", INGESTION, [unknown_env])) == []
    from_secret = container("app", "1Gi", env=[{"name": "JAVA_OPTS", "valueFrom": {"configMapKeyRef": {"name": "jvm", "key": "opts"}}}])
    assert run_resource(jvm_heap_fits, deployment("x", INGESTION, [from_secret])) == []


def test_spark_applications_are_skipped():
    app = spark_app("job", spark_conf={"spark.driver.extraJavaOptions": "-Xmx64g"})
    assert run_resource(jvm_heap_fits, app) == []
